package testpeer

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a real peer, for cutting a link on
// purpose (fault injection around the real program, not a stand-in for
// it):
//
//   - Blackhole: bytes stop passing both ways but every connection stays
//     open, as when a cable is pulled or a router dies: neither end is
//     told, and only its keepalive can notice. New connections are
//     accepted and blackholed too.
//   - Reset: every connection is closed now (both ends see it at once),
//     as when a router restarts; new ones pass.
//   - Restore: bytes pass again on new connections; connections that were
//     blackholed lost bytes, so they are closed.
//   - Tap: a function sees (and may change) each chunk before it passes,
//     to note when requests pass or to garble a response.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	mu        sync.Mutex
	blackhole bool
	tap       func(toTarget bool, b []byte)
	conns     map[net.Conn]bool // both ends of every pair
	wg        sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards each connection
// to target. It stops when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpeer: proxy listen: %v", err)
	}
	p := &Proxy{t: t, target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Reset()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed at the end of the test
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c, true); done <- struct{}{} }() // owned: ends when either conn closes
	go func() { p.pipe(c, up, false); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// pipe copies src to dst, dropping what arrives while blackholed and
// showing the rest to the tap first.
func (p *Proxy) pipe(dst, src net.Conn, toTarget bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop, tap := p.blackhole, p.tap
			p.mu.Unlock()
			if !drop && tap != nil {
				tap(toTarget, buf[:n])
			}
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // closed, or the other end went away
		}
	}
}

// Tap calls fn with each chunk read from either side before it is
// passed on (toTarget: from the client to the target); fn may change the
// bytes but not keep the slice. It runs on the copying goroutines.
func (p *Proxy) Tap(fn func(toTarget bool, b []byte)) {
	p.mu.Lock()
	p.tap = fn
	p.mu.Unlock()
}

// Blackhole stops passing bytes, keeping every connection open.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	p.blackhole = true
	p.mu.Unlock()
}

// Reset closes every connection now.
func (p *Proxy) Reset() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Restore passes bytes again; connections that were blackholed are closed.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blackhole {
		for c := range p.conns {
			c.Close()
		}
	}
	p.blackhole = false
}
