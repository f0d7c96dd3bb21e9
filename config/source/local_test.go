package source

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLocalFileChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "osgate.json")
	mtime := time.Now().Add(-time.Hour)
	write(t, path, doc("a"), mtime)
	l := localFile{path: path}
	if _, v, err := l.read(); err != nil || v != versionOf(doc("a")) {
		t.Fatalf("read: %s, %v", v, err)
	}
	if d, err := l.changed(); d != nil || err != nil {
		t.Fatalf("unchanged file: %q, %v", d, err)
	}
	// Touched, same content: no change.
	write(t, path, doc("a"), mtime.Add(time.Second))
	if d, err := l.changed(); d != nil || err != nil {
		t.Fatalf("touched file: %q, %v", d, err)
	}
	write(t, path, doc("b"), mtime.Add(2*time.Second))
	if d, err := l.changed(); string(d) != string(doc("b")) || err != nil {
		t.Fatalf("changed file: %q, %v", d, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := l.changed(); err == nil {
		t.Fatal("a removed file is not an error")
	}
}
