package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/osgate/osgate/appliance/metrics"
)

// The spool keeps every message the sink accepted until it is safe beyond
// the gateway, so that a restart (even after SIGKILL or a power cut) finds
// what was waiting. It is a directory of append-only segment files and one
// state file:
//
//	spool/0000000000000000.spool   records from seq 0 on
//	spool/00000000000a1b2c.spool   the next segment, from seq 0xa1b2c on
//	spool/ack                      where the spool stands (see below)
//
// Record format, version 2 (segments named *.spool):
//
//	magic "\xffosg" | len u32 | crc32c(len, body) u32 | body
//	body: seq u64 | topicLen u16 | topic | payload
//
// all big-endian. Seqs are consecutive, and a segment's name is the seq
// of its first record, so a segment holds exactly the seqs from its name
// up to the next segment's name. The magic marks where a record starts: a
// damaged stretch (a flipped bit, a torn write, a zeroed block) fails its
// checksum, and the reader searches for the next magic that begins a valid
// record with a higher seq, so every intact record after the damage is
// still read. What was skipped is counted from the seqs that are missing,
// logged with the segment and offset, and added to the metrics. Nothing is
// ever truncated: a new run always writes into a new segment.
//
// Version 1 segments (*.seg, written by earlier osgate versions) are
// len u32 | crc32c(body) u32 | body without a magic; they are read (with a
// slower search for the next valid record after damage) and pruned once
// sent, never written.
//
// The state file holds three values: durable (every seq below it is safe
// in the broker's saved state and is not sent again), kept (seqs from kept
// to durable are kept on disk to be replayed should the broker's saved
// state be lost, because the broker still held them for the cloud when it
// last saved), and the identity of the broker database that durable and
// kept refer to. Version 2 is "\xffack" | durable u64 | kept u64 | db u64 |
// crc32c u32; version 1 was 8 bytes (durable). A state file that fails its
// checksum makes the spool send everything it holds again (duplicates,
// never losses).
//
// Durability: Publish returns once its record is written (the records
// that arrive while one write(2) runs share the next one), so a killed
// process loses nothing that Publish accepted. The segment is fsynced every
// second and when it is closed; a power loss can lose up to the last
// second of accepted messages. The state file is written at most every
// flush tick and not fsynced: losing an update only resends (duplicates
// QoS 1 allows), never loses.

// segmentLimit: a segment rolls to the next past this size (tests lower it).
var segmentLimit int64 = 4 << 20

const (
	recordHead   = 12        // magic + len + crc (version 2)
	recordHeadV1 = 8         // len + crc (version 1)
	bodyHead     = 8 + 2     // seq + topic length
	maxRecord    = 256 << 20 // MQTT's own payload limit
	segExt       = ".spool"  // version 2 segments
	segExtV1     = ".seg"    // version 1 segments (read only)
	stateSize    = 32
)

var (
	crcTable    = crc32.MakeTable(crc32.Castagnoli)
	recordMagic = []byte{0xff, 'o', 's', 'g'}
	stateMagic  = []byte{0xff, 'a', 'c', 'k'}
)

// entry is one spooled message.
type entry struct {
	seq     uint64
	topic   string
	payload []byte
}

// segment is one segment file: the seq of its first record and its format.
type segment struct {
	first uint64
	v1    bool
}

type spool struct {
	dir string
	log *slog.Logger

	seg      *os.File
	segFirst uint64
	segSize  int64
	broken   bool      // a write failed: roll before the next append
	segs     []segment // every segment on disk, ascending
	next     uint64    // seq of the next record
	durable  uint64    // every seq below is safe beyond the gateway
	kept     uint64    // seqs from kept on are kept on disk (kept <= durable)
	db       uint64    // the broker database durable and kept refer to
	saved    [stateSize]byte
	ackFile  *os.File
	lock     *os.File // held while open (lockDir)
	dirty    bool     // written since the last sync
}

// damage is what reading a segment had to skip.
type damage struct {
	regions int   // damaged stretches
	bytes   int   // bytes skipped
	first   int   // offset of the first damaged byte
	tail    int   // bytes at the end after the last valid record (in bytes)
	lost    int64 // records of the needed range that are missing
}

// openSpool opens (creating) the spool in dir and returns the messages
// that were accepted but are not durable yet, in order.
func openSpool(dir string, log *slog.Logger) (*spool, []entry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create spool %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	s := &spool{dir: dir, log: log, lock: lock}
	af, err := os.OpenFile(filepath.Join(dir, "ack"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("open spool ack: %w", err)
	}
	s.ackFile = af
	stateOK := s.readState()
	if err := s.listSegments(); err != nil {
		s.abandon()
		return nil, nil, err
	}
	if !stateOK && len(s.segs) > 0 {
		s.durable, s.kept = s.segs[0].first, s.segs[0].first
	}
	var pending []entry
	var last uint64
	seen := false
	want := uint64(0) // the seq the next record should have
	if len(s.segs) > 0 {
		want = s.segs[0].first
	}
	for i, sg := range s.segs {
		path := s.segPath(sg)
		end := s.segEnd(i)
		data, err := os.ReadFile(path)
		if err != nil {
			// An unreadable segment (an I/O error) must not stop the
			// gateway: its records are counted as lost.
			lost := s.needed(want, end)
			s.log.Error("export spool: cannot read a segment; the messages in it are lost", "segment", path,
				"lost_messages", lost, "error", err)
			metrics.SpoolLostMessages.Add(float64(lost))
			want = max(want, end)
			continue
		}
		var lost int64
		d := readRecords(data, sg, func(e entry) bool {
			if seen && e.seq <= last {
				return false // not after the last one: stale or corrupt
			}
			lost += s.needed(want, e.seq)
			want = e.seq + 1
			if e.seq >= s.durable {
				pending = append(pending, e)
			}
			last, seen = e.seq, true
			return true
		})
		if end != 0 {
			lost += s.needed(want, end)
			want = max(want, end)
		}
		d.lost = lost
		s.report(path, len(data), d)
	}
	s.next = s.durable
	if seen && last+1 > s.next {
		s.next = last + 1
	}
	if err := s.roll(); err != nil {
		s.abandon()
		return nil, nil, err
	}
	s.prune()
	return s, pending, nil
}

// readState reads the state file; false if it exists but is damaged.
func (s *spool) readState() bool {
	var b [stateSize]byte
	n, _ := s.ackFile.ReadAt(b[:], 0)
	switch {
	case n == 0:
		return true
	case n == 8:
		s.durable = binary.BigEndian.Uint64(b[:8])
		s.kept = s.durable
		return true
	case n == stateSize && bytes.Equal(b[:4], stateMagic) &&
		crc32.Checksum(b[:28], crcTable) == binary.BigEndian.Uint32(b[28:]):
		s.durable = binary.BigEndian.Uint64(b[4:])
		s.kept = min(binary.BigEndian.Uint64(b[12:]), s.durable)
		s.db = binary.BigEndian.Uint64(b[20:])
		s.saved = b
		return true
	}
	s.log.Warn("export spool: the state file is damaged; sending every message in the spool again (duplicates possible)",
		"file", s.ackFile.Name(), "size", n)
	return false
}

// listSegments finds the segment files, in order.
func (s *spool) listSegments() error {
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list spool: %w", err)
	}
	for _, de := range names {
		if de.IsDir() {
			continue
		}
		n, v1 := de.Name(), false
		if b, ok := strings.CutSuffix(n, segExt); ok {
			n = b
		} else if b, ok := strings.CutSuffix(n, segExtV1); ok {
			n, v1 = b, true
		} else {
			continue
		}
		first, err := strconv.ParseUint(n, 16, 64)
		if err != nil || len(n) != 16 {
			continue
		}
		s.segs = append(s.segs, segment{first: first, v1: v1})
	}
	slices.SortFunc(s.segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		case a.v1 && !b.v1:
			return -1
		case !a.v1 && b.v1:
			return 1
		}
		return 0
	})
	return nil
}

// segEnd is the seq after the last record of segment i, known from the next
// segment's name; 0 for the last segment.
func (s *spool) segEnd(i int) uint64 {
	if i+1 < len(s.segs) {
		return s.segs[i+1].first
	}
	return 0
}

// needed is how many seqs of [from, to) the spool still needs (from kept on).
func (s *spool) needed(from, to uint64) int64 {
	from = max(from, s.kept)
	if to <= from {
		return 0
	}
	return int64(to - from)
}

// report logs and counts what reading a segment skipped.
func (s *spool) report(path string, size int, d damage) {
	if d.bytes > d.tail || d.lost > 0 {
		metrics.SpoolDamagedBytes.Add(float64(d.bytes))
		metrics.SpoolLostMessages.Add(float64(d.lost))
		s.log.Error("export spool: skipped damaged data in a segment and read every intact record after it; the lost messages cannot be recovered",
			"segment", path, "size", size, "damaged_regions", d.regions, "damaged_bytes", d.bytes,
			"first_damage_offset", d.first, "lost_messages", d.lost)
		return
	}
	if d.tail > 0 {
		metrics.SpoolDamagedBytes.Add(float64(d.tail))
		s.log.Warn("export spool: the end of a segment is not a complete record (a write cut short by a crash or a power cut); skipped",
			"segment", path, "size", size, "offset", size-d.tail, "bytes", d.tail)
	}
}

func (s *spool) segPath(sg segment) string {
	ext := segExt
	if sg.v1 {
		ext = segExtV1
	}
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", sg.first, ext))
}

// roll closes the current segment (fsynced) and starts one at s.next.
func (s *spool) roll() error {
	if s.seg != nil {
		if err := s.seg.Sync(); err != nil {
			s.log.Warn("export spool: fsync segment", "error", err)
		}
		s.seg.Close()
		s.seg = nil
	}
	sg := segment{first: s.next}
	path := s.segPath(sg)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat spool segment %s: %w", path, err)
	}
	if !slices.Contains(s.segs, sg) {
		s.segs = append(s.segs, sg)
	}
	s.seg, s.segFirst, s.segSize, s.broken = f, s.next, st.Size(), false
	syncDir(s.dir)
	return nil
}

// record is one message to be written: its spooled topic and payload.
type record struct {
	topic   string
	payload []byte
}

// checkSize reports whether a record of topic and payload fits.
func checkSize(topic string, payload []byte) error {
	if n := bodyHead + len(topic) + len(payload); n > maxRecord {
		return fmt.Errorf("message of %d bytes exceeds %d", n, maxRecord)
	}
	return nil
}

// A batch of records (the messages that arrived while the previous batch
// was being written) goes to the segment in one write(2): prepare, with
// the sink's lock held, rolls the segment if needed and names the first
// seq; encodeBatch and the write run without the lock; finish, with it
// held again, accepts the records that were written whole. Only one batch
// is written at a time (the sink's group commit), so nothing else moves
// next or the segment meanwhile.

// prepare returns the segment to write the next batch to and the seq of
// its first record.
func (s *spool) prepare() (*os.File, uint64, error) {
	if s.seg == nil {
		return nil, 0, errors.New("spool closed")
	}
	if s.broken || s.segSize >= segmentLimit {
		if err := s.roll(); err != nil {
			return nil, 0, err
		}
	}
	return s.seg, s.next, nil
}

// encodeBatch encodes recs (each within checkSize) as consecutive records
// from seq first on into one new buffer. It returns the buffer, and
// appended to entries and ends an entry per record whose payload shares
// the buffer's memory and where each record ends in the buffer.
func encodeBatch(first uint64, recs []record, entries []entry, ends []int) ([]byte, []entry, []int) {
	size := 0
	for _, r := range recs {
		size += recordHead + bodyHead + len(r.topic) + len(r.payload)
	}
	buf := make([]byte, size)
	off := 0
	for i, r := range recs {
		bodyLen := bodyHead + len(r.topic) + len(r.payload)
		rec := buf[off : off+recordHead+bodyLen : off+recordHead+bodyLen]
		copy(rec, recordMagic)
		binary.BigEndian.PutUint32(rec[4:], uint32(bodyLen))
		body := rec[recordHead:]
		seq := first + uint64(i)
		binary.BigEndian.PutUint64(body, seq)
		binary.BigEndian.PutUint16(body[8:], uint16(len(r.topic)))
		copy(body[bodyHead:], r.topic)
		copy(body[bodyHead+len(r.topic):], r.payload)
		crc := crc32.Update(crc32.Checksum(rec[4:8], crcTable), crcTable, body)
		binary.BigEndian.PutUint32(rec[8:], crc)
		entries = append(entries, entry{seq: seq, topic: r.topic, payload: body[bodyHead+len(r.topic):]})
		off += len(rec)
		ends = append(ends, off)
	}
	return buf, entries, ends
}

// finish records that n bytes of a batch whose records end at ends were
// written (err: the write failed there) and returns how many records were
// written whole: those are accepted. A record cut short is skipped by the
// reader; after a failed write the next batch goes to a new segment, so
// nothing is appended behind it.
func (s *spool) finish(n int, ends []int, err error) int {
	k := len(ends)
	if err != nil {
		s.broken = true
		k = 0
		for k < len(ends) && ends[k] <= n {
			k++
		}
	}
	s.segSize += int64(n)
	if n > 0 {
		s.dirty = true
	}
	s.next += uint64(k)
	return k
}

// append writes one record and returns it as an entry whose payload
// shares the record's memory.
func (s *spool) append(topic string, payload []byte) (entry, error) {
	if err := checkSize(topic, payload); err != nil {
		return entry{}, err
	}
	f, first, err := s.prepare()
	if err != nil {
		return entry{}, err
	}
	buf, entries, ends := encodeBatch(first, []record{{topic, payload}}, nil, nil)
	n, err := f.Write(buf)
	if s.finish(n, ends, err) == 0 {
		return entry{}, fmt.Errorf("write spool segment: %w", err)
	}
	return entries[0], nil
}

// setDurable records that every seq below upto is safe beyond the gateway
// and that the spool keeps seqs from kept on for a replay.
func (s *spool) setDurable(upto, kept uint64) {
	s.durable = max(s.durable, upto)
	s.kept = min(max(s.kept, kept), s.durable)
}

// rewind makes seqs from `from` on not durable again (they are sent again).
func (s *spool) rewind(from uint64) {
	s.durable = min(s.durable, from)
	s.kept = min(s.kept, s.durable)
}

// saveState writes the state file if it changed and reports whether old
// segments may now be pruned.
func (s *spool) saveState() bool {
	if s.ackFile == nil {
		return false
	}
	var b [stateSize]byte
	copy(b[:], stateMagic)
	binary.BigEndian.PutUint64(b[4:], s.durable)
	binary.BigEndian.PutUint64(b[12:], s.kept)
	binary.BigEndian.PutUint64(b[20:], s.db)
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crcTable))
	if b == s.saved {
		return false
	}
	if _, err := s.ackFile.WriteAt(b[:], 0); err != nil {
		s.log.Warn("export spool: write the state file (messages may be sent twice after a restart)", "error", err)
		return false
	}
	s.saved = b
	return len(s.segs) > 1 && s.segs[1].first <= s.savedKept()
}

func (s *spool) savedKept() uint64 {
	if !bytes.Equal(s.saved[:4], stateMagic) {
		return 0
	}
	return binary.BigEndian.Uint64(s.saved[12:])
}

// prune deletes segments whose every record is below kept (as saved).
func (s *spool) prune() {
	kept := s.savedKept()
	for len(s.segs) > 1 && s.segs[1].first <= kept && s.segs[0].first != s.segFirst {
		path := s.segPath(s.segs[0])
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("export spool: remove a segment no longer needed", "segment", path, "error", err)
			return
		}
		s.segs = s.segs[1:]
	}
}

// segmentsFrom returns the paths of the segments that may hold seqs from
// `from` on, and whether each is version 1, for reading outside the lock.
func (s *spool) segmentsFrom(from uint64) []segment {
	i := 0
	for i+1 < len(s.segs) && s.segs[i+1].first <= from {
		i++
	}
	return slices.Clone(s.segs[i:])
}

// readRange calls fn for every intact record with from <= seq < to, in
// order, reading the given segments (see segmentsFrom); fn returns false
// to stop. Damage was reported when the spool was opened and is skipped
// silently here.
func (s *spool) readRange(segs []segment, from, to uint64, fn func(entry) bool) {
	var last uint64
	seen, stop := false, false
	for _, sg := range segs {
		if sg.first >= to || stop {
			return
		}
		data, err := os.ReadFile(s.segPath(sg))
		if err != nil {
			continue
		}
		readRecords(data, sg, func(e entry) bool {
			if seen && e.seq <= last {
				return false
			}
			last, seen = e.seq, true
			if e.seq >= to {
				stop = true
				return true
			}
			if e.seq >= from && !stop && !fn(e) {
				stop = true
			}
			return true
		})
	}
}

// syncTarget returns the segment to fsync if anything was written since
// the last call; the caller fsyncs it without holding the sink's lock.
func (s *spool) syncTarget() *os.File {
	if !s.dirty {
		return nil
	}
	s.dirty = false
	return s.seg
}

// close fsyncs and closes the spool; appends fail afterwards.
func (s *spool) close() error {
	s.saveState()
	s.prune()
	var err error
	if s.seg != nil {
		if e := s.seg.Sync(); e != nil {
			err = fmt.Errorf("fsync spool segment: %w", e)
		}
		s.seg.Close()
		s.seg = nil
	}
	if s.ackFile != nil {
		s.ackFile.Close()
		s.ackFile = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
}

// abandon closes the files of a spool that failed to open.
func (s *spool) abandon() {
	if s.seg != nil {
		s.seg.Close()
	}
	if s.ackFile != nil {
		s.ackFile.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// readRecords calls fn for every valid record of segment sg, in order. A
// record that fails its checks, or that fn refuses (returns false: out of
// order), starts a damaged stretch; reading resumes at the next offset
// where a valid record that fn accepts begins. It returns what was
// skipped; lost is left for the caller, who knows which seqs to expect.
func readRecords(data []byte, sg segment, fn func(entry) bool) damage {
	var d damage
	r := recordReader{data: data, first: sg.first, v1: sg.v1}
	off := 0
	for off < len(data) {
		if e, n, ok := r.parse(off); ok && fn(e) {
			off += n
			continue
		}
		next, n := r.resync(off+1, fn)
		if next < 0 {
			d.tail = len(data) - off
			if d.tail >= r.head() {
				if d.regions == 0 {
					d.first = off
				}
				d.regions++
			}
			d.bytes += d.tail
			break
		}
		if d.regions == 0 {
			d.first = off
		}
		d.regions++
		d.bytes += next - off
		off = next + n // fn took the record at next already
	}
	return d
}

// recordReader parses the records of one segment. A record's seq must lie
// in the seqs the segment can hold, from its first on and fewer than its
// size in bytes, which also makes the search for the next record after a
// damaged stretch cheap: random bytes almost never pass that check, so the
// checksum is rarely computed in vain.
type recordReader struct {
	data  []byte
	first uint64
	v1    bool
}

func (r recordReader) head() int {
	if r.v1 {
		return recordHeadV1
	}
	return recordHead
}

// resync finds the first offset at or after from where a valid record
// that fn accepts begins, and its length; -1 if there is none. Version 2
// records are found by their magic; version 1 records have none, so every
// offset is tried.
func (r recordReader) resync(from int, fn func(entry) bool) (int, int) {
	for from < len(r.data) {
		i := from
		if !r.v1 {
			j := bytes.Index(r.data[from:], recordMagic)
			if j < 0 {
				return -1, 0
			}
			i = from + j
		}
		if e, n, ok := r.parse(i); ok && fn(e) {
			return i, n
		}
		from = i + 1
	}
	return -1, 0
}

// parse parses the record at offset off: the entry, its length, and
// whether it is valid.
func (r recordReader) parse(off int) (entry, int, bool) {
	b := r.data[off:]
	head := r.head()
	if len(b) < head+bodyHead {
		return entry{}, 0, false
	}
	lenAt := 0
	if !r.v1 {
		if !bytes.Equal(b[:4], recordMagic) {
			return entry{}, 0, false
		}
		lenAt = 4
	}
	n := int(binary.BigEndian.Uint32(b[lenAt:]))
	if n < bodyHead || n > maxRecord || len(b)-head < n {
		return entry{}, 0, false
	}
	body := b[head : head+n]
	if seq := binary.BigEndian.Uint64(body); seq < r.first || seq-r.first >= uint64(len(r.data)) {
		return entry{}, 0, false
	}
	var crc uint32
	if r.v1 {
		crc = crc32.Checksum(body, crcTable)
	} else {
		crc = crc32.Update(crc32.Checksum(b[4:8], crcTable), crcTable, body)
	}
	if crc != binary.BigEndian.Uint32(b[lenAt+4:]) {
		return entry{}, 0, false
	}
	e, ok := parseBody(body)
	return e, head + n, ok
}

func parseBody(body []byte) (entry, bool) {
	n := len(body)
	tl := int(binary.BigEndian.Uint16(body[8:]))
	if bodyHead+tl > n {
		return entry{}, false
	}
	return entry{
		seq:     binary.BigEndian.Uint64(body),
		topic:   string(body[bodyHead : bodyHead+tl]),
		payload: body[bodyHead+tl : n : n],
	}, true
}

// syncDir fsyncs a directory so a new file's name survives a power loss.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
