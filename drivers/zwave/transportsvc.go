package zwave

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// CRC-16 encapsulation (0x56) and Transport Service (0x55): a command too
// long for one frame comes in segments, which are put back together here.

// crc16 is CRC-CCITT (polynomial 0x1021) with the start value Z-Wave uses
// (0x1D0F).
func crc16(data []byte) uint16 {
	crc := uint16(0x1D0F)
	for _, b := range data {
		crc ^= uint16(b) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

var errCRC = errors.New("CRC-16 mismatch")

// unwrapCRC16 checks a CRC-16 Encapsulated Command and returns the
// command inside.
func unwrapCRC16(cmd []byte) ([]byte, error) {
	if len(cmd) < 2+2+2 {
		return nil, fmt.Errorf("zwave: CRC-16 encapsulation of %d bytes: %w", len(cmd), errShort)
	}
	n := len(cmd) - 2
	if got, want := binary.BigEndian.Uint16(cmd[n:]), crc16(cmd[:n]); got != want {
		return nil, fmt.Errorf("zwave: CRC-16 encapsulation % X: %w (0x%04X, computed 0x%04X)", cmd, errCRC, got, want)
	}
	return cmd[2:n], nil
}

// Transport Service commands: the upper five bits of the command byte;
// the lower three carry the high bits of the datagram size or offset.
const (
	tsFirst      = 0xC0
	tsRequest    = 0xC8
	tsSubsequent = 0xE0
	tsComplete   = 0xE8
	tsWait       = 0xF0

	tsMaxSessions    = 4                       // datagrams being received at once, all nodes
	tsSegmentTimeout = 1000 * time.Millisecond // silence after which missing segments are asked for
	tsMaxRequests    = 2                       // Segment Requests per datagram before giving up
	tsSessionLife    = 10 * time.Second
)

// tsSession is one datagram being received.
type tsSession struct {
	node, id byte
	size     int
	buf      []byte
	have     []bool
	got      int
	started  time.Time
	requests int
	timer    *time.Timer
}

// transportService reassembles segmented datagrams.
type transportService struct {
	mu       sync.Mutex
	sessions []*tsSession
}

func newTransportService() *transportService { return &transportService{} }

// tsHeader splits a First or Subsequent Segment: session, datagram size,
// offset (0 for the first) and the segment's payload, after checking its
// CRC.
func tsHeader(cmd []byte) (id byte, size, offset int, payload []byte, err error) {
	first := cmd[1]&0xF8 == tsFirst
	min := 3 + 2 + 1 // header, CRC, at least one byte
	if !first {
		min++
	}
	if len(cmd) < min {
		return 0, 0, 0, nil, fmt.Errorf("zwave: transport service segment of %d bytes: %w", len(cmd), errShort)
	}
	n := len(cmd) - 2
	if got, want := binary.BigEndian.Uint16(cmd[n:]), crc16(cmd[:n]); got != want {
		return 0, 0, 0, nil, fmt.Errorf("zwave: transport service segment: %w", errCRC)
	}
	size = int(cmd[1]&0x07)<<8 | int(cmd[2])
	id = cmd[3] >> 4
	hasExt := cmd[3]&0x08 != 0
	off := 4
	if !first {
		offset = int(cmd[3]&0x07)<<8 | int(cmd[4])
		off = 5
	}
	if hasExt {
		if off >= n || off+1+int(cmd[off]) > n {
			return 0, 0, 0, nil, fmt.Errorf("zwave: transport service segment: header extension overruns the segment")
		}
		off += 1 + int(cmd[off])
	}
	payload = cmd[off:n]
	if len(payload) == 0 || size == 0 || offset+len(payload) > size {
		return 0, 0, 0, nil, fmt.Errorf("zwave: transport service segment at %d of %d bytes overruns a datagram of %d", offset, len(payload), size)
	}
	return id, size, offset, payload, nil
}

// feed takes a Transport Service command from a node. It returns the
// datagram once it is complete (and answers Segment Complete), nil while
// segments are missing.
func (t *transportService) feed(c *Connector, ctl *controller, m rxMsg) ([]byte, error) {
	cmd := m.cmd
	switch cmd[1] & 0xF8 {
	case tsFirst, tsSubsequent:
	case tsWait, tsComplete, tsRequest:
		return nil, nil // about our own segments: the driver sends none
	default:
		return nil, fmt.Errorf("zwave: transport service command 0x%02X unknown", cmd[1])
	}
	id, size, offset, payload, err := tsHeader(cmd)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.find(m.node, id)
	if cmd[1]&0xF8 == tsFirst {
		if s != nil {
			t.remove(s)
		}
		s = &tsSession{node: m.node, id: id, size: size, buf: make([]byte, size), have: make([]bool, size), started: m.at}
		t.add(s)
	}
	if s == nil || s.size != size {
		return nil, fmt.Errorf("zwave: transport service segment of session %d from node %d without its first segment", id, m.node)
	}
	copy(s.buf[offset:], payload)
	for i := offset; i < offset+len(payload); i++ {
		if !s.have[i] {
			s.have[i] = true
			s.got++
		}
	}
	if s.got == s.size {
		t.remove(s)
		c.replyPlain(ctl, s.node, "transport service segment complete", []byte{ccTransportService, tsComplete, s.id << 4})
		return s.buf, nil
	}
	if offset+len(payload) == size {
		// The last segment came and some before it did not.
		t.askMissing(c, ctl, s)
		return nil, nil
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(tsSegmentTimeout, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.find(s.node, s.id) == s {
			t.askMissing(c, ctl, s)
		}
	})
	return nil, nil
}

// askMissing asks the node for the first missing segment, or gives the
// datagram up after tsMaxRequests; t.mu must be held.
func (t *transportService) askMissing(c *Connector, ctl *controller, s *tsSession) {
	if s.requests >= tsMaxRequests {
		t.remove(s)
		c.drop("transport", s.node, fmt.Errorf("zwave: transport service datagram of %d bytes from node %d incomplete after %d segment requests", s.size, s.node, tsMaxRequests))
		return
	}
	s.requests++
	off := 0
	for off < s.size && s.have[off] {
		off++
	}
	c.replyPlain(ctl, s.node, "transport service segment request",
		[]byte{ccTransportService, tsRequest, s.id<<4 | byte(off>>8)&0x07, byte(off)})
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(tsSegmentTimeout, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.find(s.node, s.id) == s {
			t.askMissing(c, ctl, s)
		}
	})
}

func (t *transportService) find(node, id byte) *tsSession {
	for _, s := range t.sessions {
		if s.node == node && s.id == id {
			return s
		}
	}
	return nil
}

// add starts a session; the oldest goes when tsMaxSessions run, and a
// node has one datagram at a time.
func (t *transportService) add(s *tsSession) {
	for _, o := range append([]*tsSession(nil), t.sessions...) {
		if o.node == s.node || s.started.Sub(o.started) > tsSessionLife {
			t.remove(o)
		}
	}
	if len(t.sessions) >= tsMaxSessions {
		t.remove(t.sessions[0])
	}
	t.sessions = append(t.sessions, s)
}

func (t *transportService) remove(s *tsSession) {
	if s.timer != nil {
		s.timer.Stop()
	}
	for i, o := range t.sessions {
		if o == s {
			t.sessions = append(t.sessions[:i], t.sessions[i+1:]...)
			return
		}
	}
}
