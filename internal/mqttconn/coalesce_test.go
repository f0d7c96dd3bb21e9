package mqttconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// tcpPair is a connected pair of loopback TCP sockets.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestCoalescingInOrderAndFlushedOnClose: every byte written arrives, in
// order, also what was still queued when Close was called (a DISCONNECT
// written just before paho closes the connection).
func TestCoalescingInOrderAndFlushedOnClose(t *testing.T) {
	client, server := tcpPair(t)
	w := newCoalescing(client, 10*time.Second)
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(server); got <- b }()
	var want bytes.Buffer
	for i := range 20000 {
		p := fmt.Appendf(nil, "packet %d;", i)
		want.Write(p)
		if n, err := w.Write(p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("received %d bytes, want %d in order", len(b), want.Len())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reader did not see the connection end")
	}
	if _, err := w.Write([]byte("late")); err == nil {
		t.Error("write after Close succeeded")
	}
}

// TestCoalescingWriteError: once the connection fails, Write says so
// (paho then reports the connection lost) instead of queueing forever.
func TestCoalescingWriteError(t *testing.T) {
	client, server := tcpPair(t)
	w := newCoalescing(client, time.Second)
	defer w.Close()
	server.(*net.TCPConn).SetLinger(0)
	server.Close() // the peer resets the connection
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := w.Write(make([]byte, 4096)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a reset connection still succeed after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// countingConn counts the reads that reach the socket.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

// TestCoalescingBufferedReads: paho reads a packet's header a byte at a
// time; acknowledgements that arrived together are read from the socket
// in a few reads, not three each, and every packet arrives intact.
func TestCoalescingBufferedReads(t *testing.T) {
	client, server := tcpPair(t)
	cc := &countingConn{Conn: client}
	w := newCoalescing(cc, 10*time.Second)
	defer w.Close()
	const n = 1000
	var burst bytes.Buffer
	for i := range n {
		ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		ack.MessageID = uint16(i + 1)
		if err := ack.Write(&burst); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := server.Write(burst.Bytes()); err != nil {
		t.Fatal(err)
	}
	w.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := range n {
		p, err := packets.ReadPacket(w)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if ack, ok := p.(*packets.PubackPacket); !ok || ack.MessageID != uint16(i+1) {
			t.Fatalf("packet %d: %v, want PUBACK %d", i, p, i+1)
		}
	}
	if cc.reads > n/10 {
		t.Errorf("%d acknowledgements took %d reads from the socket, want at most %d", n, cc.reads, n/10)
	}
	// The read deadline still reaches the socket.
	w.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := packets.ReadPacket(w); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v, want a timeout", err)
	}
}
