package export

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osgate/osgate/appliance/metrics"
)

// crashCopy copies the spool directory as a crash would leave it: the
// segment files as they are on disk now, nothing closed or cut.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, n.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestSpoolGrownAhead: records written over several of the chunks a
// segment is grown by, small ones through the mapping and now and then a
// large one by pwrite(2), are all read back, after a clean close (the file
// then ends at its last record) and after a crash (the file ends in the
// zeros grown ahead, which are the segment's end: nothing is reported
// damaged or lost).
func TestSpoolGrownAhead(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	const n = 4000
	payload := bytes.Repeat([]byte("x"), 150)
	var records int64
	big := bytes.Repeat([]byte("y"), 3*mapMax)
	for i := range n {
		p := payload
		if i%100 == 50 {
			p = big
		}
		if _, err := s.append("telemetry/gw/meter", fmt.Appendf(nil, "%d:%s", i, p)); err != nil {
			t.Fatal(err)
		}
	}
	records = s.seg.size
	if canMap && records < 2*mapChunk {
		t.Fatalf("%d bytes of records do not span two chunks of %d", records, mapChunk)
	}
	path := s.segPath(segment{first: s.segFirst})
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if canMap && st.Size() <= records {
		t.Fatalf("an open segment of %d bytes of records is %d bytes: not grown ahead", records, st.Size())
	}
	crashed := crashCopy(t, dir)
	s.close()
	if st, _ := os.Stat(path); st.Size() != records {
		t.Fatalf("a closed segment of %d bytes of records is %d bytes", records, st.Size())
	}

	for _, d := range []string{crashed, dir} {
		damaged, lost := metrics.SpoolDamagedBytes.Value(), metrics.SpoolLostMessages.Value()
		var logs logBuffer
		s2, pending, err := openSpool(d, logs.logger())
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != n {
			t.Fatalf("%s: %d records read back, want %d", d, len(pending), n)
		}
		for i, e := range pending {
			if !strings.HasPrefix(string(e.payload), fmt.Sprintf("%d:", i)) || e.seq != uint64(i) {
				t.Fatalf("%s: record %d is seq %d, %.10q", d, i, e.seq, e.payload)
			}
		}
		if logs.String() != "" {
			t.Errorf("%s: reading it logged:\n%s", d, logs.String())
		}
		if metrics.SpoolDamagedBytes.Value() != damaged || metrics.SpoolLostMessages.Value() != lost {
			t.Errorf("%s: damage or loss counted", d)
		}
		// The next run writes on, into a segment of its own.
		if _, err := s2.append("t", []byte("after")); err != nil {
			t.Fatal(err)
		}
		s2.close()
		_, pending = mustOpen(t, d)
		if len(pending) != n+1 || string(pending[n].payload) != "after" {
			t.Fatalf("%s: %d records after one more, want %d", d, len(pending), n+1)
		}
	}
}

// TestSpoolSegmentOfZeros: a crash right after a segment was grown and
// before its first record leaves a file of zeros with the name the next
// run writes to; that run empties it and writes its records there.
func TestSpoolSegmentOfZeros(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	for i := range 3 {
		if _, err := s.append("t", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.close()
	next := filepath.Join(dir, fmt.Sprintf("%016x%s", 3, segExt))
	if err := os.WriteFile(next, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	s2, pending, err := openSpool(dir, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 || logs.String() != "" {
		t.Fatalf("%d pending (want 3), log:\n%s", len(pending), logs.String())
	}
	if _, err := s2.append("t", []byte("3")); err != nil {
		t.Fatal(err)
	}
	s2.close()
	data, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(data, recordMagic) != 1 || !bytes.Equal(data[:len(recordMagic)], recordMagic) {
		t.Fatalf("the segment of zeros was not written from its start: %q", data[:min(len(data), 40)])
	}
	_, pending = mustOpen(t, dir)
	if len(pending) != 4 || string(pending[3].payload) != "3" {
		t.Fatalf("%d pending after the run, want 4", len(pending))
	}
}
