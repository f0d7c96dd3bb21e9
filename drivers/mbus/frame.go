package mbus

import (
	"errors"
	"fmt"
	"time"
)

// Link-layer control fields (EN 13757-2), master to slave.
const (
	cSndNKE = 0x40 // initialise the slave (resets its FCB)
	cReqUD2 = 0x5B // request class 2 data, FCV set; | fcbBit toggles
	cSndUD  = 0x53 // send user data, FCV set
	fcbBit  = 0x20

	ciSelect = 0x52 // SND_UD application: select by secondary address

	ack = 0xE5
)

// Errors of a transaction on the bus. They are wrapped with what was being
// done and the address; test with errors.Is.
var (
	// ErrNoReply: the meter did not answer within the timeout.
	ErrNoReply = errors.New("no reply")
	// ErrCollision: more than one meter answered (or the line is noisy).
	ErrCollision = errors.New("collision: more than one meter answered, or line noise")
	// ErrChecksum: a reply arrived damaged (checksum or framing).
	ErrChecksum = errors.New("damaged reply (checksum or framing error)")
)

func shortFrame(c, a byte) []byte {
	return []byte{0x10, c, a, c + a, 0x16}
}

func longFrame(c, a, ci byte, data []byte) []byte {
	f := make([]byte, 0, len(data)+9)
	f = append(f, 0x68, byte(len(data)+3), byte(len(data)+3), 0x68, c, a, ci)
	f = append(f, data...)
	return append(f, checksum(f[4:]), 0x16)
}

// charTime is the time one character (11 bits: start, 8 data, parity,
// stop) takes on the line.
func charTime(baud int) time.Duration {
	return time.Duration(11 * float64(time.Second) / float64(baud))
}

// reply is what a slave sent: an ACK (0xE5) or a long frame.
type reply struct {
	ack   bool
	frame []byte
	// noise counts bytes before the reply that could not start one (line
	// noise, or several slaves answering at once).
	noise int
}

// readReply reads one reply. firstByte bounds the wait for the reply to
// start; after that each byte has interByte. Bytes that cannot start a
// reply are skipped and counted; a frame whose envelope is wrong is
// ErrChecksum.
func (b *Bus) readReply(firstByte, interByte time.Duration) (reply, error) {
	deadline := time.Now().Add(firstByte)
	var r reply
	var c byte
	for {
		var err error
		if c, err = b.readByte(time.Until(deadline)); err != nil {
			if r.noise > 0 && errors.Is(err, ErrNoReply) {
				return r, fmt.Errorf("%w: %d bytes of noise, no reply", ErrChecksum, r.noise)
			}
			return r, err
		}
		if c == ack || c == 0x68 {
			break
		}
		r.noise++
	}
	if c == ack {
		r.ack = true
		return r, nil
	}
	f := append(b.frame[:0], c)
	var err error
	for len(f) < 4 {
		if c, err = b.readByte(interByte); err != nil {
			return r, fmt.Errorf("%w: frame header cut off after %d bytes", ErrChecksum, len(f))
		}
		f = append(f, c)
	}
	if f[1] != f[2] || f[3] != 0x68 {
		return r, fmt.Errorf("%w: bad long frame header % X", ErrChecksum, f)
	}
	n := int(f[1]) + 6
	for len(f) < n {
		if c, err = b.readByte(interByte); err != nil {
			return r, fmt.Errorf("%w: frame cut off after %d of %d bytes", ErrChecksum, len(f), n)
		}
		f = append(f, c)
	}
	b.frame = f
	if cs := checksum(f[4 : n-2]); cs != f[n-2] || f[n-1] != 0x16 {
		return r, fmt.Errorf("%w: checksum 0x%02X, computed 0x%02X", ErrChecksum, f[n-2], cs)
	}
	r.frame = f
	return r, nil
}

// waitQuiet reads and drops bytes until the line has been quiet for gap,
// so that a request is not repeated into the rest of a damaged reply. It
// gives up after a long frame's worth of bytes.
func (b *Bus) waitQuiet(gap time.Duration) {
	b.rpos = b.rlen
	for n := 0; n < 300; n++ {
		if _, err := b.readByte(gap); err != nil {
			return
		}
		b.rpos = b.rlen
	}
}

// readByte returns the next byte from the port, waiting at most wait.
func (b *Bus) readByte(wait time.Duration) (byte, error) {
	if b.rpos < b.rlen {
		c := b.rbuf[b.rpos]
		b.rpos++
		return c, nil
	}
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, ErrNoReply
		}
		if err := b.port.SetReadTimeout(left); err != nil {
			return 0, fmt.Errorf("set read timeout: %w", err)
		}
		n, err := b.port.Read(b.rbuf[:])
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		if n > 0 {
			b.rpos, b.rlen = 1, n
			return b.rbuf[0], nil
		}
	}
}

// extraBytes counts bytes that arrive within wait after a reply: a second
// slave answering at the same time. It stops counting at a frame's worth.
func (b *Bus) extraBytes(wait time.Duration) int {
	n := b.rlen - b.rpos
	b.rpos = b.rlen
	for n < 300 {
		if _, err := b.readByte(wait); err != nil {
			return n
		}
		n++
		n += b.rlen - b.rpos
		b.rpos = b.rlen
	}
	return n
}
