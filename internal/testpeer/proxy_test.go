package testpeer

import (
	"bufio"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestProxy: bytes pass, stop passing while blackholed (the connection
// stays open), pass again on a new connection after Restore, which closes
// the blackholed one; Reset closes at once.
func TestProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // an echo server, ends when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write([]byte(sc.Text() + "\n"))
				}
			}()
		}
	}()
	p := StartProxy(t, ln.Addr().String())
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	echo := func(c net.Conn, r *bufio.Reader, within time.Duration) (string, error) {
		c.Write([]byte("ping\n"))
		c.SetReadDeadline(time.Now().Add(within))
		return r.ReadString('\n')
	}
	c, r := dial()
	if s, err := echo(c, r, 5*time.Second); err != nil || s != "ping\n" {
		t.Fatalf("through the proxy: %q %v", s, err)
	}
	p.Blackhole()
	if s, err := echo(c, r, 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("blackholed: got %q %v, want a timeout (no bytes, connection open)", s, err)
	}
	p.Restore()
	if _, err := echo(c, r, 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("blackholed connection after restore: %v, want it closed", err)
	}
	c, r = dial()
	if s, err := echo(c, r, 5*time.Second); err != nil || s != "ping\n" {
		t.Fatalf("after restore: %q %v", s, err)
	}
	// The tap sees requests and answers, and may change an answer.
	var toTarget, back atomic.Int32
	p.Tap(func(up bool, b []byte) {
		if up {
			toTarget.Add(1)
			return
		}
		back.Add(1)
		b[0] = 'P'
	})
	if s, err := echo(c, r, 5*time.Second); err != nil || s != "Ping\n" || toTarget.Load() != 1 || back.Load() != 1 {
		t.Fatalf("tapped: %q %v, %d chunks to the target and %d back, want \"Ping\" and 1/1", s, err, toTarget.Load(), back.Load())
	}
	p.Tap(nil)
	p.Reset()
	if _, err := echo(c, r, 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after reset: %v, want the connection closed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
