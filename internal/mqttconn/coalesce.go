package mqttconn

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// coalesceLimit is how many bytes may wait to be written before Write
// blocks (back-pressure on paho's writer).
const coalesceLimit = 256 << 10

// Coalesce makes the client of o talk to the broker through a connection
// that gathers packets: Write only queues them, and one goroutine writes
// everything queued so far in one write(2) whenever it is free again.
// Under load many PUBLISH packets share a system call (and the broker
// reads them in one); an idle client's packet is written at once. Reads
// are buffered: paho reads a packet's fixed header a byte at a time, so
// without a buffer every PUBACK costs three read(2) calls; with one, a
// read takes every acknowledgement that has arrived. Only tcp:// and
// ssl:// brokers are dialled this way; others keep paho's own connection.
//
// A packet paho has handed to Write may be lost with the connection, as
// one in the socket's buffer may: QoS 1 messages stay with their sender
// until the broker acknowledges them, so nothing the broker confirmed is
// affected. Close writes what is queued (a DISCONNECT, so the broker does
// not publish the will) before it closes the connection.
func Coalesce(o *mqtt.ClientOptions) *mqtt.ClientOptions {
	return CoalesceDirect(o, nil)
}

// CoalesceDirect is Coalesce for a client whose owner also publishes on
// the connection itself (Conn.Write, whole packets, once the broker
// accepted the connection) instead of through paho: h is told when the
// broker accepts each connection, the acknowledgements it sends
// (PUBACK, PUBREC, PUBCOMP, taken out of what paho reads: paho must not
// publish on such a client), and when the connection ends. Nil h is
// Coalesce.
func CoalesceDirect(o *mqtt.ClientOptions, h Direct) *mqtt.ClientOptions {
	return o.SetCustomOpenConnectionFn(func(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
		d := &net.Dialer{Timeout: opts.ConnectTimeout}
		var c net.Conn
		var err error
		switch uri.Scheme {
		case "tcp", "mqtt":
			c, err = d.Dial("tcp", uri.Host)
		case "ssl", "tls", "mqtts", "tcps":
			c, err = tls.DialWithDialer(d, "tcp", uri.Host, opts.TLSConfig)
		default:
			return nil, errors.New("mqttconn: the coalescing connection dials tcp:// and ssl:// only, not " + uri.Scheme + "://")
		}
		if err != nil {
			return nil, err
		}
		wt := opts.WriteTimeout
		if wt <= 0 {
			wt = 10 * time.Second
		}
		w := newCoalescing(c, wt)
		w.h = h
		return w, nil
	})
}

// CoalesceURL reports whether Coalesce dials url's scheme.
func CoalesceURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch p.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
		return true
	}
	return false
}

// readBuffer is how much a coalescing connection reads at a time.
const readBuffer = 16 << 10

// Conn is a net.Conn whose writes are queued and written by flush, and
// whose reads are buffered (br: only paho's reader goroutine reads).
type Conn struct {
	net.Conn
	br      *bufio.Reader
	src     source // what br reads
	h       Direct // nil: reads pass through
	dm      demux  // with h: splits the acknowledgements off
	out     []byte // with h: read, not yet returned to paho
	ended   sync.Once
	timeout time.Duration // per write(2) of the flusher

	mu      sync.Mutex
	cond    *sync.Cond // queue emptied, error, closing
	queue   []byte     // written by paho, not yet by the flusher
	spare   []byte     // the flusher's last batch, reused
	err     error      // the first write error: every later Write returns it
	closing bool
	wake    chan struct{}
	done    chan struct{}
}

func newCoalescing(c net.Conn, timeout time.Duration) *Conn {
	w := &Conn{Conn: c, src: source{c: c, raw: newRawReader(c)}, timeout: timeout, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.br = bufio.NewReaderSize(&w.src, readBuffer)
	w.cond = sync.NewCond(&w.mu)
	go w.flush() // owned: ends on Close or a write error
	return w
}

// Read reads from the buffer, refilling it with one read(2) when empty.
// With a Direct handler, the acknowledgements are taken out and handed
// to it, all those of one read(2) together.
func (w *Conn) Read(p []byte) (int, error) {
	if w.h == nil {
		return w.br.Read(p)
	}
	for len(w.out) == 0 {
		if _, err := w.br.Peek(1); err != nil { // one read(2) when empty
			w.end()
			return 0, err
		}
		in, _ := w.br.Peek(w.br.Buffered())
		var acks []Ack
		var opened bool
		w.out, acks, opened = w.dm.feed(w.out[:0], in)
		w.br.Discard(len(in))
		if opened {
			w.h.Opened(w)
		}
		if len(acks) > 0 {
			w.src.paced = w.h.Acked(w, acks)
		}
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// end tells the Direct handler, once, that the connection ended.
func (w *Conn) end() {
	if w.h != nil {
		w.ended.Do(func() { w.h.Closed(w) })
	}
}

func (w *Conn) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.err == nil && !w.closing && len(w.queue) >= coalesceLimit {
		w.cond.Wait()
	}
	switch {
	case w.err != nil:
		err := w.err
		w.mu.Unlock()
		return 0, err
	case w.closing:
		w.mu.Unlock()
		return 0, net.ErrClosed
	}
	w.queue = append(w.queue, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// flush writes what is queued, in one write each time, until Close or an
// error.
func (w *Conn) flush() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		if len(w.queue) == 0 { // closing, all written
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue, w.spare = w.spare[:0], nil
		w.cond.Broadcast()
		w.mu.Unlock()

		w.Conn.SetWriteDeadline(time.Now().Add(w.timeout))
		_, err := w.Conn.Write(batch)

		w.mu.Lock()
		if cap(batch) <= coalesceLimit {
			w.spare = batch[:0]
		}
		if err != nil {
			w.err = err
			w.queue = nil
			w.cond.Broadcast()
			w.mu.Unlock()
			w.Conn.Close() // paho's reader sees the connection end
			w.end()
			return
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// SetWriteDeadline is ignored: Write does not wait for the network, and
// the flusher gives each of its writes the client's write timeout.
func (w *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (w *Conn) SetDeadline(t time.Time) error { return w.Conn.SetReadDeadline(t) }

// Close writes what is queued (within the write timeout) and closes the
// connection.
func (w *Conn) Close() error {
	w.mu.Lock()
	w.closing = true
	w.cond.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-time.After(w.timeout):
	}
	err := w.Conn.Close()
	w.end()
	return err
}
