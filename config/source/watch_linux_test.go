package source

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLocalFileChangeNoticed: on Linux a change of the local file is
// delivered when the kernel says it happened, not at the next look: with
// looks an hour apart, an edit in place, a file renamed onto it (how
// editors and config tools replace it) and an edit through a symlink each
// arrive within seconds.
func TestLocalFileChangeNoticed(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	if err := os.WriteFile(real, doc("l1"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "osgate.json")
	if err := os.Symlink(real, local); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options[*testConfig]{LocalPath: local, Validate: validate, LocalPoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	expect(t, soon(t, src), "l1", Local)

	// Replaced by a rename: the symlink becomes a plain file.
	tmp := filepath.Join(dir, "osgate.json.tmp")
	if err := os.WriteFile(tmp, doc("l2"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // Next waits by then
		os.Rename(tmp, local)
	}()
	expect(t, soon(t, src), "l2", Local)

	// Written in place.
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.WriteFile(local, doc("l3"), 0o644)
	}()
	expect(t, soon(t, src), "l3", Local)

	// A symlink again, and its target written.
	os.Remove(local)
	if err := os.Symlink(real, local); err != nil {
		t.Fatal(err)
	}
	expect(t, soon(t, src), "l1", Local) // the link's target is l1
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.WriteFile(real, doc("l4"), 0o644)
	}()
	expect(t, soon(t, src), "l4", Local)
}

// soon is next within 10 s: far less than the hour between looks.
func soon(t *testing.T, src *Source[*testConfig]) Update[*testConfig] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v: the change was not noticed (status %+v)", err, src.Status())
	}
	return u
}
