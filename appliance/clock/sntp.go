package clock

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// An SNTP client (RFC 4330, the client side of RFC 5905): one request,
// one answer, the offset of the server's clock from ours.

const (
	ntpPacketLen = 48
	// ntpUnixDelta is the seconds from the NTP epoch (1900) to 1970.
	ntpUnixDelta = 2208988800
	// maxRootDistance is the largest error bound (root delay / 2 + root
	// dispersion) an answer may state about its own time.
	maxRootDistance = 16 * time.Second
)

// ntpAnswer is what a server's reply says.
type ntpAnswer struct {
	Received, Transmitted time.Time // the server's T2 and T3
	Stratum               uint8
}

// errKiss is a server's kiss-o'-death (stratum 0): it asks the client to
// go away or slow down.
type errKiss string

func (e errKiss) Error() string {
	return fmt.Sprintf("the server refused to answer (kiss code %q)", string(e))
}

// parseNTPReply checks a reply to the request whose transmit timestamp
// was nonce and returns what it says. Any byte string is safe to give it.
func parseNTPReply(b []byte, nonce uint64) (ntpAnswer, error) {
	var a ntpAnswer
	if len(b) < ntpPacketLen {
		return a, fmt.Errorf("reply of %d bytes, want at least %d", len(b), ntpPacketLen)
	}
	li, vn, mode := b[0]>>6, (b[0]>>3)&7, b[0]&7
	if mode != 4 {
		return a, fmt.Errorf("reply in mode %d, want 4 (server)", mode)
	}
	if vn < 1 || vn > 4 {
		return a, fmt.Errorf("reply of NTP version %d", vn)
	}
	if binary.BigEndian.Uint64(b[24:32]) != nonce {
		return a, errors.New("reply does not answer this request (originate timestamp differs)")
	}
	a.Stratum = b[1]
	if a.Stratum == 0 {
		return a, errKiss(printable(b[12:16]))
	}
	if li == 3 {
		return a, errors.New("the server's own clock is not synchronized (leap indicator 3)")
	}
	if a.Stratum > 15 {
		return a, fmt.Errorf("the server is not synchronized (stratum %d)", a.Stratum)
	}
	rootDelay := shortDuration(binary.BigEndian.Uint32(b[4:8]))
	rootDisp := shortDuration(binary.BigEndian.Uint32(b[8:12]))
	if d := rootDelay/2 + rootDisp; d > maxRootDistance {
		return a, fmt.Errorf("the server's time is too uncertain (root distance %s)", d)
	}
	rx, tx := binary.BigEndian.Uint64(b[32:40]), binary.BigEndian.Uint64(b[40:48])
	if rx == 0 || tx == 0 {
		return a, errors.New("reply without receive or transmit timestamp")
	}
	a.Received, a.Transmitted = fromNTP(rx), fromNTP(tx)
	if a.Transmitted.Before(a.Received) {
		return a, errors.New("reply sent before the request was received")
	}
	return a, nil
}

// fromNTP converts a 32.32 fixed-point NTP timestamp. Seconds with the
// top bit clear are in era 1 (from 2036-02-07 on): the answer is right
// from 1968 to 2104.
func fromNTP(v uint64) time.Time {
	sec, frac := int64(v>>32), v&0xffffffff
	if sec&0x80000000 == 0 {
		sec += 1 << 32
	}
	nsec := (frac * 1e9) >> 32
	return time.Unix(sec-ntpUnixDelta, int64(nsec)).UTC()
}

// shortDuration converts NTP's 16.16 fixed-point seconds.
func shortDuration(v uint32) time.Duration {
	return time.Duration(uint64(v) * uint64(time.Second) >> 16)
}

func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

// ntpRequest is a client request whose transmit timestamp is nonce: a
// random number rather than our time, which the server copies back into
// the reply's originate timestamp (so a reply is matched to its request,
// and nothing about our clock is sent).
func ntpRequest(nonce uint64) []byte {
	b := make([]byte, ntpPacketLen)
	b[0] = 4<<3 | 3 // leap 0, version 4, mode 3 (client)
	binary.BigEndian.PutUint64(b[40:48], nonce)
	return b
}

// queryNTP asks the NTP server at addr (host:port; a name is resolved)
// for its time and returns how far it is ahead of now() and the round
// trip. It gives up when ctx ends.
func queryNTP(ctx context.Context, addr string, now func() time.Time) (offset, rtt time.Duration, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return 0, 0, fmt.Errorf("ntp %s: %w", addr, err)
	}
	defer conn.Close()
	wait := "the time allowed"
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
		wait = time.Until(dl).Round(10 * time.Millisecond).String()
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	var nb [8]byte
	rand.Read(nb[:])
	nonce := binary.BigEndian.Uint64(nb[:])
	t1, mono := now(), time.Now()
	if _, err := conn.Write(ntpRequest(nonce)); err != nil {
		return 0, 0, fmt.Errorf("ntp %s: send: %w", addr, err)
	}
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("no answer within %s (is the server up, and UDP port 123 open?)", wait)
			}
			return 0, 0, fmt.Errorf("ntp %s: %w", addr, err)
		}
		elapsed := time.Since(mono)
		a, err := parseNTPReply(buf[:n], nonce)
		if err != nil {
			var kiss errKiss
			if errors.As(err, &kiss) || n >= ntpPacketLen && binary.BigEndian.Uint64(buf[24:32]) == nonce {
				return 0, 0, fmt.Errorf("ntp %s: %w", addr, err)
			}
			continue // not an answer to this request: wait for the real one
		}
		t4 := t1.Add(elapsed)
		server := a.Transmitted.Sub(a.Received)
		rtt = max(elapsed-server, 0)
		offset = (a.Received.Sub(t1) + a.Transmitted.Sub(t4)) / 2
		return offset, rtt, nil
	}
}
