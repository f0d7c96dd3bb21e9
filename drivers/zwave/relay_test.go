package zwave

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osgate/osgate/drivers/core"
)

// faultRelay sits between the driver's pty (socat connects to it) and the
// mock controller's TCP port and misbehaves like a noisy serial line: it
// answers the first SendData with NAK and the first GetNodeProtocolInfo
// with CAN instead of forwarding them, drops the controller's ACK of the
// first GetSerialApiInitData, delivers everything the controller sends in
// pieces of three bytes (splitting frames and joining ACKs with the next
// frame), and puts stale garbage on the line before the driver opens it.
type faultRelay struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu         sync.Mutex
	conns      []net.Conn
	hostFrames []frame // every frame the driver sent, in order
	nak, can   int     // frames answered by the relay
	droppedAck int
	dropAck    bool // drop the controller's next ACK
	dropDone   bool
	host       net.Conn    // the driver's side, once socat connected
	hw         *sync.Mutex // both pumps write to the host
	ready      chan struct{}
}

func startRelay(t *testing.T, upstream string) *faultRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "relay listen")
	r := &faultRelay{ln: ln, upstream: upstream, ready: make(chan struct{})}
	r.wg.Add(1)
	go r.accept(t)
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *faultRelay) addr() string { return r.ln.Addr().String() }

func (r *faultRelay) accept(t *testing.T) {
	defer r.wg.Done()
	host, err := r.ln.Accept()
	if err != nil {
		return
	}
	ctl, err := net.Dial("tcp", r.upstream)
	if err != nil {
		t.Errorf("relay: dial mock controller: %v", err)
		host.Close()
		return
	}
	hw := &sync.Mutex{}
	r.mu.Lock()
	r.conns = append(r.conns, host, ctl)
	r.host, r.hw = host, hw
	r.mu.Unlock()
	close(r.ready)
	r.wg.Add(2)
	go r.hostToController(host, ctl, hw)
	go r.controllerToHost(ctl, host, hw)
}

// stale puts a half frame and noise into the pty, as a previous session
// may leave them, and waits until they are queued in the terminal. It
// returns a function that closes the test's own handle on the terminal;
// call it once the driver has the terminal open (closing the last handle
// would discard the queue).
func (r *faultRelay) stale(t *testing.T, tty string) func() {
	t.Helper()
	select {
	case <-r.ready:
	case <-time.After(time.Minute):
		t.Fatal("socat did not connect to the relay")
	}
	fd, err := unix.Open(tty, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	must(t, err, "open %s", tty)
	junk := []byte{0x01, 0x09, 0x00, 0x04, 0x00, 0x42, 0x99}
	r.hw.Lock()
	_, err = r.host.Write(junk)
	r.hw.Unlock()
	must(t, err, "write stale input")
	waitFor(t, time.Minute, "stale input queued in the pty", func() bool {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		return err == nil && n >= len(junk)
	})
	return func() { unix.Close(fd) }
}

func (r *faultRelay) hostToController(host, ctl net.Conn, hw *sync.Mutex) {
	defer r.wg.Done()
	defer ctl.Close()
	var p parser
	buf := make([]byte, 512)
	for {
		n, err := host.Read(buf)
		if err != nil {
			return
		}
		p.feed(buf[:n], time.Now())
		for {
			ev, ok := p.next()
			if !ok {
				break
			}
			if ev.Header != sof {
				ctl.Write([]byte{ev.Header})
				continue
			}
			if ev.Err != nil {
				continue // the driver never sends bad frames; the test checks nak/can counts
			}
			f := ev.Frame
			r.mu.Lock()
			r.hostFrames = append(r.hostFrames, f)
			var answer byte
			switch {
			case f.Func == fnSendData && r.nak == 0:
				r.nak++
				answer = nak
			case f.Func == fnGetProtocolInfo && r.can == 0:
				r.can++
				answer = can
			case f.Func == fnGetInitData && !r.dropDone:
				r.dropAck, r.dropDone = true, true
			}
			r.mu.Unlock()
			if answer != 0 {
				hw.Lock()
				host.Write([]byte{answer})
				hw.Unlock()
				continue
			}
			raw, _ := f.encode()
			ctl.Write(raw)
		}
	}
}

func (r *faultRelay) controllerToHost(ctl, host net.Conn, hw *sync.Mutex) {
	defer r.wg.Done()
	defer host.Close()
	var p parser
	buf := make([]byte, 512)
	for {
		n, err := ctl.Read(buf)
		if err != nil {
			return
		}
		p.feed(buf[:n], time.Now())
		var out []byte
		for {
			ev, ok := p.next()
			if !ok {
				break
			}
			if ev.Header != sof {
				r.mu.Lock()
				drop := ev.Header == ack && r.dropAck
				if drop {
					r.dropAck = false
					r.droppedAck++
				}
				r.mu.Unlock()
				if !drop {
					out = append(out, ev.Header)
				}
				continue
			}
			raw, _ := ev.Frame.encode()
			out = append(out, raw...)
		}
		for len(out) > 0 {
			k := min(3, len(out))
			hw.Lock()
			_, err := host.Write(out[:k])
			hw.Unlock()
			if err != nil {
				return
			}
			out = out[k:]
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// count returns how often the driver sent a frame with function fn.
func (r *faultRelay) count(fn byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.hostFrames {
		if f.Func == fn {
			n++
		}
	}
	return n
}

// retransmitted reports whether the first frame with function fn was sent
// again, byte for byte, right after it.
func (r *faultRelay) retransmitted(fn byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, f := range r.hostFrames {
		if f.Func == fn {
			return i+1 < len(r.hostFrames) && r.hostFrames[i+1].Func == fn && bytes.Equal(r.hostFrames[i+1].Data, f.Data)
		}
	}
	return false
}

// TestFaultyLine runs a session through the fault relay: the driver must
// recover from a NAK, a CAN and a lost ACK by retransmitting, re-frame
// split and joined input, and ignore stale input.
func TestFaultyLine(t *testing.T) {
	m := startMock(t)
	relay := startRelay(t, m.addr)
	tty := startPTY(t, relay.addr())
	meter := dev("meter", 3, 0, "electric_kwh")
	relayDev := dev("relay", 4, 0, "switch")
	c := newTestConnector(t, tty, meter, relayDev)
	release := relay.stale(t, tty)

	kwh := pollOne(t, c, meter, "electric_kwh")
	release()
	if kwh.Unit != "kWh" || kwh.Value.(float64) < 1234.5 {
		t.Fatalf("electric_kwh through the faulty line: %+v", kwh)
	}
	must(t, c.Write(testCtx(t, time.Minute), relayDev, "switch", true), "write switch")
	if r := pollOne(t, c, relayDev, "switch"); r.Value != true {
		t.Fatalf("switch reads %v after writing true", r.Value)
	}

	relay.mu.Lock()
	nakN, canN, dropped := relay.nak, relay.can, relay.droppedAck
	relay.mu.Unlock()
	if nakN != 1 || canN != 1 || dropped != 1 {
		t.Fatalf("faults injected: %d NAK, %d CAN, %d dropped ACK; want one each", nakN, canN, dropped)
	}
	for fn, what := range map[byte]string{fnSendData: "SendData after NAK", fnGetProtocolInfo: "GetNodeProtocolInfo after CAN", fnGetInitData: "GetSerialApiInitData after a lost ACK"} {
		if !relay.retransmitted(fn) {
			t.Errorf("%s was not retransmitted", what)
		}
	}
	// The stale half frame was flushed on open: had the driver read it, it
	// would have swallowed the ACK of the first request, and that request
	// would have been sent twice.
	if n := relay.count(fnGetCapabilities); n != 1 {
		t.Errorf("GetSerialApiCapabilities sent %d times, want 1: stale input was not flushed", n)
	}
	if n := relay.count(fnGetInitData); n != 2 {
		t.Errorf("GetSerialApiInitData sent %d times, want 2 (one retransmission)", n)
	}
	// The stick lists SoftReset as supported, so the session reset it once.
	if n := relay.count(fnSoftReset); n != 1 {
		t.Errorf("SoftReset sent %d times, want 1", n)
	}
	// Only functions the stick lists as supported went out (plus the
	// capabilities query that learns the list).
	mockSupports := map[byte]bool{fnGetCapabilities: true, fnSoftReset: true, fnGetInitData: true, 0x05: true,
		fnSendData: true, 0x14: true, 0xA9: true, 0xAB: true, 0x15: true, fnGetControllerID: true, fnGetProtocolInfo: true,
		fnRequestNodeInfo: true, 0x51: true, 0x55: true, fnAddNode: true, fnRemoveNode: true}
	relay.mu.Lock()
	for _, f := range relay.hostFrames {
		if !mockSupports[f.Func] {
			t.Errorf("driver sent function 0x%02X, which the stick does not support", f.Func)
		}
	}
	relay.mu.Unlock()
}

// TestLinkDown checks that a lost stick ends Listen with an error and that
// the next call opens a fresh session.
func TestLinkDown(t *testing.T) {
	m := startMock(t)
	relay := startRelay(t, m.addr)
	tty := startPTY(t, relay.addr())
	relayDev := dev("relay", 4, 0, "switch")
	c := newTestConnector(t, tty, relayDev)
	pollOne(t, c, relayDev, "switch")

	ctx := testCtx(t, 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- c.Listen(ctx, func(...core.Reading) error { return nil }) }()
	// Pull the plug: the relay drops both connections, socat exits and the
	// pty goes away.
	relay.mu.Lock()
	for _, conn := range relay.conns {
		conn.Close()
	}
	relay.mu.Unlock()
	select {
	case err := <-done:
		if !errors.Is(err, errLinkDown) {
			t.Fatalf("Listen after the stick vanished: %v, want link down", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Listen did not return after the stick vanished")
	}
	waitFor(t, time.Minute, "socat to remove the pty", func() bool {
		_, err := os.Stat(tty)
		return err != nil
	})
	if _, err := c.Poll(testCtx(t, time.Minute), relayDev); err == nil {
		t.Fatal("poll succeeded without a stick")
	}
	// Plug it back in: the next poll opens a new session.
	relay2 := startRelay(t, m.addr)
	startPTYAt(t, relay2.addr(), tty)
	pollOne(t, c, relayDev, "switch")
}
