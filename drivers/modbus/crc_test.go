package modbus

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

// corruptingProxy forwards TCP between the driver and the peer's RTU-over-TCP
// endpoint, and flips a bit in the next response byte stream chunk while
// armed: line noise, as a CRC error.
type corruptingProxy struct {
	ln    net.Listener
	armed atomic.Int32 // responses still to corrupt
	wg    sync.WaitGroup
}

func startCorruptingProxy(t *testing.T, upstream string) *corruptingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &corruptingProxy{ln: ln}
	p.wg.Add(1)
	go func() { // owned: ends when ln closes in Cleanup
		defer p.wg.Done()
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			p.wg.Add(2)
			// Both copiers end when either side closes.
			go func() { defer p.wg.Done(); io.Copy(up, down); up.Close() }()
			go func() {
				defer p.wg.Done()
				defer down.Close()
				buf := make([]byte, 512)
				for {
					n, err := up.Read(buf)
					if n > 0 {
						if p.armed.Load() > 0 {
							p.armed.Add(-1)
							buf[n-1] ^= 0x01 // the CRC's last byte
						}
						if _, werr := down.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// TestCRCError: a response garbled on the way makes only the channels of
// that read bad, with the CRC named; the next poll is clean again.
func TestCRCError(t *testing.T) {
	peer := startPeer(t, peerOpts{rtuTCP: true})
	proxy := startCorruptingProxy(t, peer.rtuTCP)
	d := dev("m", 2, ch("hr5", `{"register":"holding","address":5}`), ch("ir7", `{"register":"input","address":7}`))
	c := newConn(t, fmt.Sprintf(`{"transport":"rtuovertcp","address":%q,"timeout":"2s"}`, proxy.ln.Addr()), d)

	pollOK(t, c, d) // connected, clean
	proxy.armed.Store(1)
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
