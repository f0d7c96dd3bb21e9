package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/osgate/osgate/internal/prom"

	"github.com/osgate/osgate/appliance/metrics"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// logBuffer is a logger whose text output the test can read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func mustOpen(t testing.TB, dir string) (*spool, []entry) {
	t.Helper()
	s, pending, err := openSpool(dir, quiet())
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	return s, pending
}

func counterValue(t testing.TB, c *prom.Counter) float64 {
	t.Helper()
	return c.Value()
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
	s.setDurable(4, 4)
	s.saveState()
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
	if n := s2.next - s2.durable; n != 7 {
		t.Fatalf("pending = %d, want 7", n)
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

// TestSpoolSkipsTornTail: a crash in the middle of a write leaves part of a
// record at the end of the segment; the next run reads every record before
// it, leaves the file as it is and writes into a new segment.
func TestSpoolSkipsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	for range 3 {
		if _, err := s.append("t", []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
	seg := s.segPath(segment{first: s.segFirst})
	s.close()
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append(slices.Clone(recordMagic), 0, 0, 0, 40, 1, 2, 3))
	f.Close()
	st, _ := os.Stat(seg)
	var logs logBuffer
	s2, pending, err := openSpool(dir, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 {
		t.Fatalf("replayed %d, want 3", len(pending))
	}
	if !strings.Contains(logs.String(), "cut short") {
		t.Fatalf("the torn write was not logged:\n%s", logs.String())
	}
	if _, err := s2.append("t", []byte("after")); err != nil {
		t.Fatal(err)
	}
	s2.close()
	if st2, _ := os.Stat(seg); st2.Size() != st.Size() {
		t.Fatalf("the segment was changed from %d to %d bytes", st.Size(), st2.Size())
	}
	_, pending = mustOpen(t, dir)
	if len(pending) != 4 || string(pending[3].payload) != "after" || pending[3].seq != 3 {
		t.Fatalf("after the torn write: %d pending, last %+v", len(pending), pending[len(pending)-1])
	}
}

func TestSpoolPrunesAckedSegments(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	big := make([]byte, 64<<10)
	n := int(3 * segmentLimit / int64(len(big)))
	for range n {
		if _, err := s.append("t", big); err != nil {
			t.Fatal(err)
		}
	}
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
		return len(m)
	}
	if segs() < 3 {
		t.Fatalf("%d segments after %d MiB, want at least 3", segs(), n*len(big)>>20)
	}
	// Kept for a replay: nothing is pruned.
	s.setDurable(uint64(n), 0)
	if s.saveState() {
		t.Fatal("segments of the replay tail may be pruned")
	}
	s.setDurable(uint64(n), uint64(n))
	if s.saveState() {
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

// TestSpoolDamagedState: a state file that fails its checksum makes the
// spool send everything it holds again.
func TestSpoolDamagedState(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	for range 5 {
		s.append("t", []byte("p"))
	}
	s.setDurable(3, 3)
	s.close()
	p := filepath.Join(dir, "ack")
	b, _ := os.ReadFile(p)
	b[6] ^= 0x40 // durable would jump far ahead
	os.WriteFile(p, b, 0o600)
	_, pending := mustOpen(t, dir)
	if len(pending) != 5 {
		t.Fatalf("after a damaged state file %d pending, want all 5", len(pending))
	}
}

// writeV1 writes a spool as osgate wrote it before the record magic: an
// 8-byte ack file and *.seg segments of len | crc | body records.
func writeV1(t testing.TB, dir string, acked uint64, segs map[uint64][]string) {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], acked)
	os.WriteFile(filepath.Join(dir, "ack"), b[:], 0o600)
	for first, payloads := range segs {
		var data []byte
		for i, p := range payloads {
			body := binary.BigEndian.AppendUint64(nil, first+uint64(i))
			body = binary.BigEndian.AppendUint16(body, 1)
			body = append(body, 't')
			body = append(body, p...)
			data = binary.BigEndian.AppendUint32(data, uint32(len(body)))
			data = binary.BigEndian.AppendUint32(data, crc32.Checksum(body, crcTable))
			data = append(data, body...)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%016x.seg", first)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolReadsVersion1: a spool left by an earlier osgate is read,
// damaged records included, and new records go into version 2 segments.
func TestSpoolReadsVersion1(t *testing.T) {
	dir := t.TempDir()
	writeV1(t, dir, 2, map[uint64][]string{0: {"a", "b", "c", "d"}, 4: {"e", "f", "g"}})
	// Damage "e" (seq 4): the reader must find "f" and "g" without a magic.
	p := filepath.Join(dir, fmt.Sprintf("%016x.seg", 4))
	data, _ := os.ReadFile(p)
	data[12] ^= 1
	os.WriteFile(p, data, 0o600)
	before := counterValue(t, metrics.SpoolLostMessages)
	s, pending := mustOpen(t, dir)
	var got []string
	for _, e := range pending {
		got = append(got, fmt.Sprintf("%d:%s", e.seq, e.payload))
	}
	if want := []string{"2:c", "3:d", "5:f", "6:g"}; !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	if lost := counterValue(t, metrics.SpoolLostMessages) - before; lost != 1 {
		t.Fatalf("lost messages counted %v, want 1", lost)
	}
	e, err := s.append("t", []byte("h"))
	if err != nil || e.seq != 7 {
		t.Fatalf("append: %d %v", e.seq, err)
	}
	s.setDurable(7, 7)
	s.close()
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%016x%s", 7, segExt))); err != nil {
		t.Fatalf("no version 2 segment: %v", err)
	}
	_, pending = mustOpen(t, dir)
	if len(pending) != 1 || string(pending[0].payload) != "h" {
		t.Fatalf("after the upgrade: %+v", pending)
	}
}

// spoolImage is a spool written by the real code, kept in memory: every
// record's seq, topic and payload, and where it lies.
type spoolImage struct {
	files map[string][]byte
	names []string // segment file names, in order
	recs  []imageRec
}

type imageRec struct {
	e          entry
	file       string
	start, end int
}

// buildImage writes n records of varied sizes through a spool with small
// segments and reads the files back.
func buildImage(t testing.TB, n int, segLimit int64) spoolImage {
	t.Helper()
	old := segmentLimit
	segmentLimit = segLimit
	defer func() { segmentLimit = old }()
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	img := spoolImage{files: map[string][]byte{}}
	for i := range n {
		topic := fmt.Sprintf("telemetry/gw/dev-%d", i%7)
		payload := bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i*37)%90)
		off := s.segSize
		if s.broken || s.segSize >= segmentLimit {
			off = 0
		}
		e, err := s.append(topic, payload)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(s.segPath(segment{first: s.segFirst}))
		img.recs = append(img.recs, imageRec{e: entry{seq: e.seq, topic: topic, payload: payload}, file: name,
			start: int(off), end: int(s.segSize)})
	}
	s.close()
	for _, sg := range s.segs {
		name := filepath.Base(s.segPath(sg))
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			continue
		}
		img.files[name] = data
		img.names = append(img.names, name)
	}
	return img
}

// recoverDamaged writes img, damaged by ops, into a fresh spool directory,
// opens it and checks that every record the damage did not touch is read
// back as it was written, that nothing else is, and that the lost count
// is exact when the last segment is untouched. Each op is 5 bytes: a kind
// (flip a byte, cut the segment, zero 64 bytes) and a position in the
// concatenated segments.
func recoverDamaged(t *testing.T, img spoolImage, ops []byte) {
	files := map[string][]byte{}
	total := 0
	for _, n := range img.names {
		files[n] = slices.Clone(img.files[n])
		total += len(files[n])
	}
	touched := map[string][]bool{}
	cut := map[string]int{}
	for _, n := range img.names {
		touched[n] = make([]bool, len(files[n]))
		cut[n] = len(files[n])
	}
	locate := func(pos int) (string, int) {
		for _, n := range img.names {
			if pos < len(img.files[n]) {
				return n, pos
			}
			pos -= len(img.files[n])
		}
		return "", 0
	}
	for len(ops) >= 5 {
		kind, pos := ops[0]%3, int(binary.BigEndian.Uint32(ops[1:5])%uint32(total))
		ops = ops[5:]
		n, off := locate(pos)
		switch kind {
		case 0:
			files[n][off] ^= 1 << (pos % 8)
			touched[n][off] = true
		case 1:
			cut[n] = min(cut[n], off)
		case 2:
			for i := off; i < min(off+64, len(files[n])); i++ {
				files[n][i] = 0
				touched[n][i] = true
			}
		}
	}
	dir := t.TempDir()
	lastTouched := false
	for i, n := range img.names {
		data := files[n][:cut[n]]
		if i == len(img.names)-1 && (cut[n] < len(files[n]) || slices.Contains(touched[n], true)) {
			lastTouched = true
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := counterValue(t, metrics.SpoolLostMessages)
	s, pending, err := openSpool(dir, quiet())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.close()
	lost := counterValue(t, metrics.SpoolLostMessages) - before
	got := map[uint64]entry{}
	for _, e := range pending {
		got[e.seq] = e
	}
	missing := 0
	for _, r := range img.recs {
		g, ok := got[r.e.seq]
		if ok {
			if g.topic != r.e.topic || !bytes.Equal(g.payload, r.e.payload) {
				t.Fatalf("record %d read back as %q %q, written as %q %q", r.e.seq, g.topic, g.payload, r.e.topic, r.e.payload)
			}
			delete(got, r.e.seq)
			continue
		}
		missing++
		intact := r.end <= cut[r.file] && !slices.Contains(touched[r.file][r.start:r.end], true)
		if intact {
			t.Fatalf("record %d (%s bytes %d-%d) was not damaged but is not read back", r.e.seq, r.file, r.start, r.end)
		}
	}
	if len(got) > 0 {
		t.Fatalf("%d records read that were never written", len(got))
	}
	if !lastTouched && int(lost) != missing {
		t.Fatalf("%v messages counted as lost, %d are", lost, missing)
	}
	if int(lost) > missing {
		t.Fatalf("%v messages counted as lost, only %d are", lost, missing)
	}
}

// TestSpoolSurvivesFlippedByte: one byte flipped in the middle of the
// first of two segments costs exactly the record it is in; every other
// record is read, the loss is logged with the segment and counted, and the
// segment files stay as they are.
func TestSpoolSurvivesFlippedByte(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir)
	var n uint64
	for len(s.segs) < 2 {
		if _, err := s.append("telemetry/gw/meter", []byte(fmt.Sprintf(`{"seq":%d}`, n))); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for range 1000 {
		s.append("telemetry/gw/meter", []byte(fmt.Sprintf(`{"seq":%d}`, n)))
		n++
	}
	first := s.segPath(s.segs[0])
	s.close()
	data, _ := os.ReadFile(first)
	data[len(data)/2] ^= 0x10
	os.WriteFile(first, data, 0o600)
	bytesBefore := counterValue(t, metrics.SpoolDamagedBytes)
	lostBefore := counterValue(t, metrics.SpoolLostMessages)
	var logs logBuffer
	s2, pending, err := openSpool(dir, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	s2.close()
	if uint64(len(pending)) != n-1 {
		t.Fatalf("%d of %d records read after one flipped byte, want all but one", len(pending), n)
	}
	if lost := counterValue(t, metrics.SpoolLostMessages) - lostBefore; lost != 1 {
		t.Fatalf("lost messages counted: %v, want 1", lost)
	}
	if b := counterValue(t, metrics.SpoolDamagedBytes) - bytesBefore; b < 40 || b > 70 {
		t.Fatalf("damaged bytes counted: %v, want about one record", b)
	}
	for _, want := range []string{filepath.Base(first), "lost_messages=1", "damaged_regions=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log does not say %q:\n%s", want, logs.String())
		}
	}
	if st, _ := os.Stat(first); st.Size() != int64(len(data)) {
		t.Fatalf("the damaged segment was changed to %d bytes from %d", st.Size(), len(data))
	}
}

// TestSpoolRecoveryDeterministic runs the fuzz property over fixed damage.
func TestSpoolRecoveryDeterministic(t *testing.T) {
	img := buildImage(t, 300, 2048)
	if len(img.names) < 4 {
		t.Fatalf("%d segments, want several", len(img.names))
	}
	op := func(kind byte, pos uint32) []byte { return binary.BigEndian.AppendUint32([]byte{kind}, pos) }
	total := 0
	for _, n := range img.names {
		total += len(img.files[n])
	}
	cases := map[string][]byte{
		"nothing":              nil,
		"flip in the first":    op(0, 1000),
		"flip in a magic":      op(0, uint32(img.recs[10].start)),
		"flip in a length":     op(0, uint32(img.recs[10].start+5)),
		"zeroed block":         op(2, 3000),
		"cut the first":        op(1, 1500),
		"cut the last":         op(1, uint32(total-20)),
		"flip in the last":     op(0, uint32(total-30)),
		"many flips and a cut": append(append(append(op(0, 100), op(0, 5000)...), op(2, 9000)...), op(1, 7000)...),
	}
	for name, ops := range cases {
		t.Run(name, func(t *testing.T) { recoverDamaged(t, img, ops) })
	}
}

// FuzzSpoolRecovery: random flips, zeroed blocks and cuts; every record the
// damage did not touch is recovered, and nothing that was not written.
func FuzzSpoolRecovery(f *testing.F) {
	img := buildImage(f, 200, 1500)
	op := func(kind byte, pos uint32) []byte { return binary.BigEndian.AppendUint32([]byte{kind}, pos) }
	f.Add([]byte{})
	f.Add(op(0, 700))
	f.Add(op(1, 2000))
	f.Add(op(2, 4000))
	f.Add(append(op(0, 10), op(0, 3010)...))
	f.Add(append(op(2, 100), op(1, 6000)...))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 50 {
			ops = ops[:50]
		}
		recoverDamaged(t, img, ops)
	})
}

// FuzzReadRecords: any bytes as a segment never panic, and what is read
// lies within the data.
func FuzzReadRecords(f *testing.F) {
	img := buildImage(f, 20, 1<<20)
	data := img.files[img.names[0]]
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v1 := range []bool{false, true} {
			d := readRecords(data, segment{v1: v1}, func(entry) bool { return true })
			if d.bytes < 0 || d.bytes > len(data) || d.tail > d.bytes {
				t.Fatalf("damage %+v outside %d bytes", d, len(data))
			}
		}
	})
}
