package mqttconn

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
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
