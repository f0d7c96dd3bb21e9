package modbus

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// startCorruptingProxy forwards TCP between the driver and the peer's
// RTU-over-TCP endpoint, and flips a bit in the last byte of the next
// response chunk while armed > 0: line noise, as a CRC error.
func startCorruptingProxy(t *testing.T, upstream string) (*testpeer.Proxy, *atomic.Int32) {
	p := testpeer.StartProxy(t, upstream)
	armed := new(atomic.Int32) // responses still to corrupt
	p.Tap(func(toTarget bool, b []byte) {
		if !toTarget && armed.Load() > 0 {
			armed.Add(-1)
			b[len(b)-1] ^= 0x01 // the CRC's last byte
		}
	})
	return p, armed
}

// TestCRCError: a response garbled on the way makes only the channels of
// that read bad, with the CRC named; the next poll is clean again.
func TestCRCError(t *testing.T) {
	peer := startPeer(t, peerOpts{rtuTCP: true})
	proxy, armed := startCorruptingProxy(t, peer.rtuTCP)
	d := dev("m", 2, ch("hr5", `{"register":"holding","address":5}`), ch("ir7", `{"register":"input","address":7}`))
	c := newConn(t, fmt.Sprintf(`{"transport":"rtuovertcp","address":%q,"timeout":"2s"}`, proxy.Addr()), d)

	pollOK(t, c, d) // connected, clean
	armed.Store(1)
	rs := pollOK(t, c, d)
	if r := rs["hr5"]; r.Quality != core.Bad || r.Err == nil || !strings.Contains(r.Err.Error(), "crc") {
		t.Fatalf("hr5 with a garbled response: %s %v, want bad with a CRC error", r.Quality, r.Err)
	}
	if r := rs["ir7"]; r.Quality != core.Good || r.Value != int64(7) {
		t.Fatalf("ir7, read cleanly after the garbled read: %s %v %v", r.Quality, r.Value, r.Err)
	}
	rs = pollOK(t, c, d)
	if rs["hr5"].Value != int64(38) || rs["ir7"].Value != int64(7) {
		t.Fatalf("poll after the noise: %v", rs)
	}
}
