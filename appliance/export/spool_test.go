package export

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustOpen(t *testing.T, dir string) (*spool, []entry) {
	t.Helper()
	s, pending, err := openSpool(dir, quiet())
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	return s, pending
}

func TestSpoolReplaysUnacked(t *testing.T) {
	dir := t.TempDir()
	s, pending := mustOpen(t, dir)
	if len(pending) != 0 {
		t.Fatalf("fresh spool has %d pending", len(pending))
	}
	for i := range 10 {
		if _, err := s.append(fmt.Sprintf("t/%d", i), []byte(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.ack(4)
	s.saveAck()
	// No close: as if the process was killed (which drops the lock).
	s.abandon()
	s2, pending := mustOpen(t, dir)
	defer s2.close()
	if len(pending) != 6 {
		t.Fatalf("replayed %d messages, want 6", len(pending))
	}
	for i, e := range pending {
		want := uint64(i + 4)
		if e.seq != want || e.topic != fmt.Sprintf("t/%d", want) || string(e.payload) != fmt.Sprintf("p%d", want) {
			t.Fatalf("replayed[%d] = %d %q %q", i, e.seq, e.topic, e.payload)
		}
	}
	e, err := s2.append("t/new", []byte("x"))
	if err != nil || e.seq != 10 {
		t.Fatalf("append after replay: seq %d, %v; want 10", e.seq, err)
	}
	if s2.pending() != 7 {
		t.Fatalf("pending = %d, want 7", s2.pending())
	}
}

func TestSpoolIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	if _, _, err := openSpool(dir, quiet()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second open of a spool in use: %v", err)
	}
	s.close()
	s2, _ := mustOpen(t, dir)
	s2.close()
}

func TestSpoolCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	for range 3 {
		if _, err := s.append("t", []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
	seg := s.segPath(s.segFirst)
	s.close()
	// A crash in the middle of a fourth write.
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0, 40, 1, 2, 3})
	f.Close()
	s2, pending := mustOpen(t, dir)
	if len(pending) != 3 {
		t.Fatalf("replayed %d, want 3", len(pending))
	}
	if _, err := s2.append("t", []byte("after")); err != nil {
		t.Fatal(err)
	}
	s2.close()
	_, pending = mustOpen(t, dir)
	if len(pending) != 4 || string(pending[3].payload) != "after" || pending[3].seq != 3 {
		t.Fatalf("after the cut: %d pending, last %+v", len(pending), pending[len(pending)-1])
	}
}

func TestSpoolPrunesAckedSegments(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	big := make([]byte, 64<<10)
	n := 3 * segmentLimit / len(big)
	for range n {
		if _, err := s.append("t", big); err != nil {
			t.Fatal(err)
		}
	}
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		return len(m)
	}
	if segs() < 3 {
		t.Fatalf("%d segments after %d MiB, want at least 3", segs(), n*len(big)>>20)
	}
	s.ack(uint64(n))
	if s.saveAck() {
		s.prune()
	}
	if got := segs(); got != 1 {
		t.Fatalf("%d segments after acknowledging everything, want 1 (the current)", got)
	}
	s.close()
	_, pending := mustOpen(t, dir)
	if len(pending) != 0 {
		t.Fatalf("%d pending after everything was acknowledged", len(pending))
	}
}

func FuzzParseRecords(f *testing.F) {
	dir := f.TempDir()
	s, _, err := openSpool(dir, quiet())
	if err != nil {
		f.Fatal(err)
	}
	s.append("telemetry/gw/dev", []byte(`{"ts":"x"}`))
	s.append("", nil)
	seg := s.segPath(s.segFirst)
	s.close()
	data, err := os.ReadFile(seg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := parseRecords(data, func(entry) bool { return true })
		if n < 0 || n > len(data) {
			t.Fatalf("valid length %d outside 0..%d", n, len(data))
		}
		if err == nil && n != len(data) {
			t.Fatalf("no error but only %d of %d bytes valid", n, len(data))
		}
	})
}
