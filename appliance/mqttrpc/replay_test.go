package mqttrpc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sumOf(b byte) [16]byte { return [16]byte{b} }

func TestIDMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	now := time.Unix(1_800_000_000, 0)
	m, bad, err := openIDs(path, 3, now)
	if err != nil || bad != 0 {
		t.Fatalf("open: %v, %d bad", err, bad)
	}
	check := func(id string, sum byte, exp time.Duration, want verdict) {
		t.Helper()
		v, err := m.check(id, sumOf(sum), now.Add(exp), now)
		if err != nil || v != want {
			t.Fatalf("check(%s): got %v %v, want %v", id, v, err, want)
		}
	}
	check("a", 1, time.Minute, fresh)
	check("a", 1, time.Minute, duplicate)
	check("a", 2, time.Minute, replayed)
	check("b", 1, 2*time.Minute, fresh)
	check("c", 1, 90*time.Minute, fresh)
	check("d", 1, time.Minute, full) // three live ids
	if err := m.close(); err != nil {
		t.Fatal(err)
	}

	// Reopened two minutes later: "a" and "b" have expired, "c" has not.
	now = now.Add(2 * time.Minute)
	m, bad, err = openIDs(path, 3, now)
	if err != nil || bad != 0 {
		t.Fatalf("reopen: %v, %d bad", err, bad)
	}
	if len(m.live) != 1 {
		t.Fatalf("live ids after reopen: %v, want only c", m.live)
	}
	check("c", 1, time.Minute, duplicate)
	check("c", 9, time.Minute, replayed)
	check("a", 2, time.Minute, fresh)
	check("d", 1, time.Minute, fresh)
	check("e", 1, time.Minute, full)
	// Once ids expire, room is made.
	now = now.Add(2 * time.Minute)
	check("e", 1, time.Minute, fresh)
	m.close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v, want 0600", info.Mode().Perm())
	}
	if n := bytes.Count(data, []byte{'\n'}); n != 4 { // c from the rewrite, then a, d, e
		t.Fatalf("journal has %d lines, want 4:\n%s", n, data)
	}
}

// A power cut mid-write leaves a torn last line; other garbage is skipped
// too, and counted.
func TestJournalDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	now := time.Unix(1_800_000_000, 0)
	good := formatLine("keep-1", seen{exp: now.Unix() + 60, sum: sumOf(7)})
	journal := good +
		"garbage\n" +
		formatLine("old", seen{exp: now.Unix() - 1, sum: sumOf(1)}) +
		"123 bad/id 00000000000000000000000000000000\n" +
		"-5 x 00000000000000000000000000000000\n" +
		"99999999999 x 0000\n" +
		formatLine("keep-2", seen{exp: now.Unix() + 60, sum: sumOf(8)}) +
		"1800000060 torn 0000"
	if err := os.WriteFile(path, []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	m, bad, err := openIDs(path, 10, now)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if bad != 5 {
		t.Fatalf("%d bad lines, want 5", bad)
	}
	if len(m.live) != 2 || m.live["keep-1"].sum != sumOf(7) || m.live["keep-2"].sum != sumOf(8) {
		t.Fatalf("live: %v", m.live)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "garbage") || strings.Contains(string(data), "torn") {
		t.Fatalf("the damage was not rewritten away:\n%s", data)
	}
}

// The journal is compacted when dead lines pile up.
func TestJournalCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	now := time.Unix(1_800_000_000, 0)
	m, _, err := openIDs(path, 100, now)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	for i := range 3000 {
		now = now.Add(time.Second)
		id := fmt.Sprintf("id-%d", i)
		if v, err := m.check(id, sumOf(1), now.Add(10*time.Second), now); err != nil || v != fresh {
			t.Fatalf("check %d: %v %v", i, v, err)
		}
	}
	data, _ := os.ReadFile(path)
	if n := bytes.Count(data, []byte{'\n'}); n > 2*100+compactSlack+1 {
		t.Fatalf("journal has %d lines for at most 100 live ids: not compacted", n)
	}
	if len(m.live) > 100 {
		t.Fatalf("%d ids in memory, want at most 100", len(m.live))
	}
}

func TestJournalUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if _, _, err := openIDs(filepath.Join(dir, StateFile), 10, time.Now()); err == nil || !strings.Contains(err.Error(), "request id journal") {
		t.Fatalf("open in a missing dir: %v", err)
	}
}
