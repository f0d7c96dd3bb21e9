package zwave

import (
	"errors"
	"fmt"
	"time"
)

// Serial API frame layer (Z-Wave Host API, "Serial API"): a data frame is
//
//	SOF LEN TYPE FUNC DATA... CHECKSUM
//
// where LEN counts TYPE through CHECKSUM and CHECKSUM is 0xFF XOR every byte
// from LEN to the last DATA byte. ACK, NAK and CAN are single bytes.
const (
	sof = 0x01
	ack = 0x06
	nak = 0x15
	can = 0x18

	typeRequest  = 0x00
	typeResponse = 0x01

	// minLen is LEN of a frame without DATA: TYPE, FUNC, CHECKSUM.
	minLen = 3
	// byteTimeout drops a partial frame whose next byte does not arrive in
	// time (the Serial API's byte timeout is 150 ms; a loaded host gets more).
	byteTimeout = 1500 * time.Millisecond
)

// frame is one Serial API data frame.
type frame struct {
	Type byte // typeRequest or typeResponse
	Func byte // function id
	Data []byte
	// secret marks a frame that carries a key: its bytes are never
	// written to a log or an error.
	secret bool
}

func (f frame) String() string {
	t := "REQ"
	if f.Type == typeResponse {
		t = "RES"
	}
	if f.secret {
		return fmt.Sprintf("%s 0x%02X (%d bytes not shown: they carry a key)", t, f.Func, len(f.Data))
	}
	return fmt.Sprintf("%s 0x%02X % X", t, f.Func, f.Data)
}

// encode returns the bytes of f on the wire.
func (f frame) encode() ([]byte, error) {
	if len(f.Data) > 255-minLen {
		return nil, fmt.Errorf("zwave: frame 0x%02X: %d data bytes, at most %d fit", f.Func, len(f.Data), 255-minLen)
	}
	b := make([]byte, 0, len(f.Data)+5)
	b = append(b, sof, byte(len(f.Data)+minLen), f.Type, f.Func)
	b = append(b, f.Data...)
	return append(b, checksum(b[1:])), nil
}

// checksum is 0xFF XOR every byte of b (LEN through the last DATA byte).
func checksum(b []byte) byte {
	c := byte(0xFF)
	for _, x := range b {
		c ^= x
	}
	return c
}

// event is what the parser finds in the byte stream: a single-byte header
// (ack, nak, can), a data frame, or a data frame that failed its checksum.
type event struct {
	Header byte // ack, nak, can or sof
	Frame  frame
	Err    error // set for a data frame that must be NAKed
}

var errChecksum = errors.New("zwave: bad frame checksum")

// parser re-frames the receive byte stream: reads may split a frame or hold
// several. It drops bytes that cannot start a frame and a partial frame that
// stalls for longer than byteTimeout.
type parser struct {
	buf     []byte
	last    time.Time
	skipped int // bytes dropped as garbage, for diagnostics
}

// feed appends bytes read at now.
func (p *parser) feed(b []byte, now time.Time) {
	if len(p.buf) > 0 && now.Sub(p.last) > byteTimeout {
		p.skipped += len(p.buf)
		p.buf = p.buf[:0]
	}
	p.last = now
	p.buf = append(p.buf, b...)
}

// next returns the next complete event, or ok=false when more bytes are
// needed.
func (p *parser) next() (ev event, ok bool) {
	for len(p.buf) > 0 {
		switch b := p.buf[0]; b {
		case ack, nak, can:
			p.consume(1)
			return event{Header: b}, true
		case sof:
			if len(p.buf) < 2 {
				return event{}, false
			}
			n := int(p.buf[1])
			if n < minLen {
				// Not a frame start: a stray 0x01. Resynchronise on the
				// next byte.
				p.skipped++
				p.consume(1)
				continue
			}
			if len(p.buf) < n+2 {
				return event{}, false
			}
			raw := p.buf[:n+2]
			ev := event{Header: sof}
			if checksum(raw[1:n+1]) != raw[n+1] {
				ev.Err = fmt.Errorf("%w in % X", errChecksum, raw)
			} else {
				ev.Frame = frame{Type: raw[2], Func: raw[3], Data: append([]byte(nil), raw[4:n+1]...)}
			}
			p.consume(n + 2)
			return ev, true
		default:
			p.skipped++
			p.consume(1)
		}
	}
	return event{}, false
}

func (p *parser) consume(n int) {
	rest := copy(p.buf, p.buf[n:])
	p.buf = p.buf[:rest]
}
