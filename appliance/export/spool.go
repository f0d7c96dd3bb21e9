package export

import (
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
)

// The spool keeps every message the sink accepted until the broker has
// acknowledged it, so that a restart (even after SIGKILL) finds what was
// waiting. It is a directory of append-only segment files and one ack file:
//
//	spool/0000000000000000.seg   records from seq 0 on
//	spool/00000000000a1b2c.seg   the next segment, from seq 0xa1b2c on
//	spool/ack                    8 bytes: every seq below it is acknowledged
//
// A record is len(u32) crc32c(u32) body, body being seq(u64)
// topicLen(u16) topic payload, all big-endian. A torn record at the end of
// a segment (a crash mid-write) fails its length or CRC check and is cut
// off at the next start.
//
// Durability: records are written with one write(2) each, so a killed
// process loses nothing that Publish accepted. The segment is fsynced every
// second and when it is closed; a power loss can lose up to the last
// second of accepted messages. The ack file is written at most every
// flush tick and not fsynced: losing it only resends (duplicates QoS 1
// allows), never loses.

const (
	segmentLimit = 4 << 20   // roll to a new segment past this size
	recordHead   = 8         // len + crc
	bodyHead     = 8 + 2     // seq + topic length
	maxRecord    = 256 << 20 // MQTT's own payload limit
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// entry is one spooled message.
type entry struct {
	seq     uint64
	topic   string
	payload []byte
}

type spool struct {
	dir string
	log *slog.Logger

	seg      *os.File
	segFirst uint64
	segSize  int64
	broken   bool     // a write failed: roll before the next append
	segs     []uint64 // first seq of every segment on disk, ascending
	next     uint64   // seq of the next record
	acked    uint64   // every seq below is acknowledged
	saved    uint64   // acked as last written to the ack file
	ackFile  *os.File
	lock     *os.File // held while open (lockDir)
	dirty    bool     // written since the last sync
}

// openSpool opens (creating) the spool in dir and returns the messages
// that were accepted but not acknowledged, in order.
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
	var b [8]byte
	if n, _ := af.ReadAt(b[:], 0); n == 8 {
		s.acked = binary.BigEndian.Uint64(b[:])
		s.saved = s.acked
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		s.abandon()
		return nil, nil, fmt.Errorf("list spool: %w", err)
	}
	for _, de := range names {
		n, ok := strings.CutSuffix(de.Name(), ".seg")
		if !ok || de.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(n, 16, 64)
		if err != nil {
			continue
		}
		s.segs = append(s.segs, first)
	}
	slices.Sort(s.segs)
	var pending []entry
	var last uint64
	seen := false
	for i, first := range s.segs {
		path := s.segPath(first)
		data, err := os.ReadFile(path)
		if err != nil {
			s.abandon()
			return nil, nil, fmt.Errorf("read spool segment %s: %w", path, err)
		}
		valid, err := parseRecords(data, func(e entry) bool {
			if seen && e.seq <= last {
				return false // out of order: corrupt
			}
			if e.seq >= s.acked {
				pending = append(pending, e)
			}
			last, seen = e.seq, true
			return true
		})
		if err != nil {
			s.log.Warn("export spool: cutting off a damaged segment tail (a crash mid-write, or disk corruption)",
				"segment", path, "offset", valid, "size", len(data), "error", err)
			if i == len(s.segs)-1 {
				if err := os.Truncate(path, int64(valid)); err != nil {
					s.abandon()
					return nil, nil, fmt.Errorf("truncate spool segment %s: %w", path, err)
				}
			}
		}
	}
	s.next = s.acked
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

func (s *spool) segPath(first uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.seg", first))
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
	path := s.segPath(s.next)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat spool segment %s: %w", path, err)
	}
	if !slices.Contains(s.segs, s.next) {
		s.segs = append(s.segs, s.next)
	}
	s.seg, s.segFirst, s.segSize, s.broken = f, s.next, st.Size(), false
	syncDir(s.dir)
	return nil
}

// append writes one record and returns it as an entry whose payload
// shares the record's memory.
func (s *spool) append(topic string, payload []byte) (entry, error) {
	if s.seg == nil {
		return entry{}, errors.New("spool closed")
	}
	if s.broken || s.segSize >= segmentLimit {
		if err := s.roll(); err != nil {
			return entry{}, err
		}
	}
	bodyLen := bodyHead + len(topic) + len(payload)
	if bodyLen > maxRecord {
		return entry{}, fmt.Errorf("message of %d bytes exceeds %d", bodyLen, maxRecord)
	}
	rec := make([]byte, recordHead+bodyLen)
	binary.BigEndian.PutUint32(rec[0:], uint32(bodyLen))
	binary.BigEndian.PutUint64(rec[8:], s.next)
	binary.BigEndian.PutUint16(rec[16:], uint16(len(topic)))
	copy(rec[18:], topic)
	copy(rec[18+len(topic):], payload)
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], crcTable))
	if _, err := s.seg.Write(rec); err != nil {
		// Cut off whatever part was written so no later record sits
		// behind a torn one; roll to a fresh segment next time.
		_ = s.seg.Truncate(s.segSize)
		s.broken = true
		return entry{}, fmt.Errorf("write spool segment: %w", err)
	}
	s.segSize += int64(len(rec))
	s.dirty = true
	e := entry{seq: s.next, topic: topic, payload: rec[18+len(topic):]}
	s.next++
	return e, nil
}

// pending is how many accepted messages are not yet acknowledged.
func (s *spool) pending() int { return int(s.next - s.acked) }

// ack records that every seq below upto is acknowledged.
func (s *spool) ack(upto uint64) {
	if upto > s.acked {
		s.acked = upto
	}
}

// saveAck writes the ack offset if it moved and reports whether old
// segments may now be pruned.
func (s *spool) saveAck() bool {
	if s.acked == s.saved || s.ackFile == nil {
		return false
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.acked)
	if _, err := s.ackFile.WriteAt(b[:], 0); err != nil {
		s.log.Warn("export spool: write ack offset (messages may be sent twice after a restart)", "error", err)
		return false
	}
	s.saved = s.acked
	return len(s.segs) > 1 && s.segs[1] <= s.saved
}

// prune deletes segments whose every record is acknowledged (as saved).
func (s *spool) prune() {
	for len(s.segs) > 1 && s.segs[1] <= s.saved && s.segs[0] != s.segFirst {
		path := s.segPath(s.segs[0])
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("export spool: remove acknowledged segment", "segment", path, "error", err)
			return
		}
		s.segs = s.segs[1:]
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
	s.saveAck()
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
	if s.ackFile != nil {
		s.ackFile.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// parseRecords calls fn for every valid record of a segment, in order, and
// returns how many bytes they span. It stops with an error at the first
// record that is cut short or fails its checks, or when fn returns false.
func parseRecords(data []byte, fn func(entry) bool) (int, error) {
	off := 0
	for off < len(data) {
		rest := data[off:]
		if len(rest) < recordHead {
			return off, fmt.Errorf("record header cut short at offset %d", off)
		}
		n := int(binary.BigEndian.Uint32(rest[0:]))
		if n < bodyHead || n > maxRecord {
			return off, fmt.Errorf("record length %d at offset %d out of range", n, off)
		}
		if len(rest)-recordHead < n {
			return off, fmt.Errorf("record at offset %d cut short", off)
		}
		body := rest[recordHead : recordHead+n]
		if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(rest[4:]) {
			return off, fmt.Errorf("record at offset %d fails its checksum", off)
		}
		tl := int(binary.BigEndian.Uint16(body[8:]))
		if bodyHead+tl > n {
			return off, fmt.Errorf("record at offset %d: topic longer than record", off)
		}
		e := entry{
			seq:     binary.BigEndian.Uint64(body),
			topic:   string(body[bodyHead : bodyHead+tl]),
			payload: body[bodyHead+tl : n : n],
		}
		if !fn(e) {
			return off, fmt.Errorf("record at offset %d out of sequence", off)
		}
		off += recordHead + n
	}
	return off, nil
}

// syncDir fsyncs a directory so a new file's name survives a power loss.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
