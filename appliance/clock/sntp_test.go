package clock

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// reply is a server's answer to the request with nonce, sent at t.
func reply(nonce uint64, t time.Time) []byte {
	b := make([]byte, ntpPacketLen)
	b[0] = 0<<6 | 4<<3 | 4                     // leap 0, version 4, server
	b[1] = 2                                   // stratum
	binary.BigEndian.PutUint32(b[4:8], 1<<12)  // root delay 1/16 s
	binary.BigEndian.PutUint32(b[8:12], 1<<12) // root dispersion 1/16 s
	binary.BigEndian.PutUint64(b[24:32], nonce)
	binary.BigEndian.PutUint64(b[32:40], toNTP(t))
	binary.BigEndian.PutUint64(b[40:48], toNTP(t.Add(time.Millisecond)))
	return b
}

func toNTP(t time.Time) uint64 {
	sec := uint64(t.Unix()+ntpUnixDelta) & 0xffffffff
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func TestParseNTPReply(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 250e6, time.UTC)
	a, err := parseNTPReply(reply(7, at), 7)
	if err != nil || !a.Received.Equal(at) || a.Stratum != 2 {
		t.Fatalf("parse = %+v, %v", a, err)
	}
	// After 2036 (NTP era 1) and before (era 0).
	for _, when := range []time.Time{time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if a, err := parseNTPReply(reply(1, when), 1); err != nil || !a.Received.Equal(when) {
			t.Errorf("%s read as %s, %v", when, a.Received, err)
		}
	}
	bad := func(mod func(b []byte), want string) {
		t.Helper()
		b := reply(7, at)
		mod(b)
		if _, err := parseNTPReply(b, 7); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error with %q, got %v", want, err)
		}
	}
	bad(func(b []byte) { b[0] = b[0]&^7 | 3 }, "mode 3")
	bad(func(b []byte) { b[0] |= 3 << 6 }, "not synchronized")
	bad(func(b []byte) { b[1] = 0; copy(b[12:16], "RATE") }, `"RATE"`)
	bad(func(b []byte) { b[1] = 16 }, "stratum 16")
	bad(func(b []byte) { b[31]++ }, "originate")
	bad(func(b []byte) { binary.BigEndian.PutUint32(b[8:12], 20<<16) }, "root distance")
	bad(func(b []byte) { copy(b[40:48], make([]byte, 8)) }, "transmit")
	bad(func(b []byte) { b[0] = b[0]&^(7<<3) | 7<<3 }, "version 7")
	if _, err := parseNTPReply(reply(7, at)[:47], 7); err == nil {
		t.Error("a short reply was accepted")
	}
}

func FuzzNTPReply(f *testing.F) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.Add(reply(7, at))
	kiss := reply(7, at)
	kiss[1] = 0
	copy(kiss[12:16], "DENY")
	f.Add(kiss)
	f.Add(make([]byte, 48))
	f.Add([]byte{0x24})
	f.Add(append(reply(7, at), make([]byte, 20)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseNTPReply(b, 7)
		if err != nil {
			return
		}
		if a.Transmitted.Before(a.Received) || a.Stratum == 0 || a.Stratum > 15 {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// TestQueryNTP asks a real NTP server (chronyd serving this machine's
// clock): the offset of a clock that is right is about zero, of one an
// hour behind about an hour.
func TestQueryNTP(t *testing.T) {
	chrony := testpeer.StartChrony(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	off, rtt, err := queryNTP(ctx, chrony.Addr(), time.Now)
	if err != nil || off.Abs() > 50*time.Millisecond || rtt > time.Second {
		t.Fatalf("offset %s rtt %s err %v", off, rtt, err)
	}
	off, _, err = queryNTP(ctx, chrony.Addr(), func() time.Time { return time.Now().Add(-time.Hour) })
	if err != nil || (off-time.Hour).Abs() > 50*time.Millisecond {
		t.Fatalf("an hour behind: offset %s err %v", off, err)
	}
}
