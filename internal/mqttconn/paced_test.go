//go:build linux

package mqttconn

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pacedOwner is a Direct owner that counts what it is told and answers
// busy as the test says.
type pacedOwner struct {
	busy   atomic.Bool
	mu     sync.Mutex
	calls  int
	acks   []Ack
	closed chan struct{}
	once   sync.Once
}

func newPacedOwner() *pacedOwner { return &pacedOwner{closed: make(chan struct{})} }

func (o *pacedOwner) Opened(*Conn) {}

func (o *pacedOwner) Acked(_ *Conn, acks []Ack) bool {
	o.mu.Lock()
	o.calls++
	o.acks = append(o.acks, acks...)
	o.mu.Unlock()
	return o.busy.Load()
}

func (o *pacedOwner) Closed(*Conn) { o.once.Do(func() { close(o.closed) }) }

// count returns how many Acked calls and acknowledgements came so far.
func (o *pacedOwner) count() (calls, acks int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls, len(o.acks)
}

// waitAcks waits until n acknowledgements came.
func (o *pacedOwner) waitAcks(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, got := o.count(); got >= n {
			return
		}
		if time.Now().After(deadline) {
			_, got := o.count()
			t.Fatalf("%d acknowledgements came in 10 s, want %d", got, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// puback is the PUBACK of id.
func puback(id uint16) []byte { return []byte{Puback << 4, 2, byte(id >> 8), byte(id)} }

// ack has the broker acknowledge id, the n-th acknowledgement, and waits
// until o has it.
func ack(t *testing.T, server net.Conn, o *pacedOwner, id uint16) {
	t.Helper()
	if _, err := server.Write(puback(id)); err != nil {
		t.Fatal(err)
	}
	o.waitAcks(t, int(id))
}

// lowat is the socket's SO_RCVLOWAT.
func lowat(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// pacedConn is a direct connection to server whose reader (paho's, in the
// gateway) runs until the connection ends; what passes through to it is
// sent on out.
func pacedConn(t *testing.T, o *pacedOwner) (w *Conn, server net.Conn, out chan []byte) {
	client, server := tcpPair(t)
	w = newCoalescing(client, 10*time.Second)
	w.h = o
	t.Cleanup(func() { w.Close() })
	out = make(chan []byte, 16)
	go func() {
		for {
			p := make([]byte, 64)
			n, err := w.Read(p)
			if err != nil {
				close(out)
				return
			}
			out <- p[:n]
		}
	}()
	return w, server, out
}

// TestPacedReadsOnATick: while the owner is busy, acknowledgements that
// the broker writes one at a time are read on a tick, many in one read,
// not one read (and one wake-up of the gateway) each as they arrive.
func TestPacedReadsOnATick(t *testing.T) {
	o := newPacedOwner()
	o.busy.Store(true)
	_, server, _ := pacedConn(t, o)
	ack(t, server, o, 1) // answered busy: reading on a tick from here on
	const n = 100
	start := time.Now()
	for i := range n {
		if _, err := server.Write(puback(uint16(i + 2))); err != nil {
			t.Fatal(err)
		}
		// 100 µs apart, spinning: a sleep of the test's own would be
		// rounded up to the timer's resolution.
		for t0 := time.Now(); time.Since(t0) < 100*time.Microsecond; {
		}
	}
	spread := time.Since(start)
	o.waitAcks(t, n+1)
	calls, _ := o.count()
	calls-- // the first acknowledgement's
	// One read a tick while they came, one for the last tick's, and one
	// for each time the reader went back to waiting (the test held up by
	// the machine for more than pacedIdle ticks, before the first write
	// or between two).
	limit := int(spread/pace) + 3 + int(spread/(pacedIdle*pace))
	t.Logf("%d acknowledgements over %v: %d reads (limit %d)", n, spread, calls, limit)
	if calls > limit {
		t.Errorf("%d acknowledgements written 100 µs apart over %v took %d reads, want at most %d (one a tick of %v)", n, spread, calls, limit, pace)
	}
	for i, a := range o.acks {
		if a != (Ack{Kind: Puback, ID: uint16(i + 1)}) {
			t.Fatalf("acknowledgement %d is %v, want PUBACK %d", i, a, i+1)
		}
	}
}

// TestPacedLeavesNothingWaiting: paced reading never leaves what came
// unread. A packet for paho arrives on a tick; after a pause with nothing
// to read the reader goes back to waiting for arrivals, and once the
// owner is no longer busy the socket wakes it for every byte again; the
// connection's end is seen either way.
func TestPacedLeavesNothingWaiting(t *testing.T) {
	o := newPacedOwner()
	o.busy.Store(true)
	w, server, out := pacedConn(t, o)
	ack(t, server, o, 1)
	ping := []byte{0xd0, 0} // PINGRESP: paho's, passed through
	if _, err := server.Write(ping); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-out:
		if string(p) != string(ping) {
			t.Fatalf("passed through %x, want the PINGRESP %x", p, ping)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a PINGRESP sent while reading on a tick did not reach paho in 10 s")
	}
	// Nothing for far longer than pacedIdle ticks: back to waiting for
	// arrivals, so a lone acknowledgement is read at once.
	time.Sleep(20 * pacedIdle * pace)
	if got := lowat(t, w.Conn); got > 1 {
		t.Errorf("after %v with nothing to read SO_RCVLOWAT is %d, want 1", 20*pacedIdle*pace, got)
	}
	o.busy.Store(false)
	ack(t, server, o, 2)
	ack(t, server, o, 3)
	if got := lowat(t, w.Conn); got > 1 {
		t.Errorf("owner not busy: SO_RCVLOWAT %d, want 1", got)
	}
	// Busy again, then the broker goes away: the end is read on a tick.
	o.busy.Store(true)
	ack(t, server, o, 4)
	server.Close()
	select {
	case <-o.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection's end was not seen in 10 s")
	}
	if _, ok := <-out; ok {
		t.Error("paho read on after the connection ended")
	}
}

// TestPacedClosedLocally: closing the connection while its reader waits
// for the next tick ends the reader with the close's error.
func TestPacedClosedLocally(t *testing.T) {
	o := newPacedOwner()
	o.busy.Store(true)
	w, server, out := pacedConn(t, o)
	ack(t, server, o, 1)
	if err := w.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	select {
	case _, ok := <-out:
		if ok {
			t.Fatal("paho read data after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not end in 10 s after Close")
	}
	var p [1]byte
	if _, err := w.Read(p[:]); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("read after Close: %v, want the closed connection's error", err)
	}
}
