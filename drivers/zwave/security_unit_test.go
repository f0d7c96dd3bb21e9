package zwave

import (
	"bytes"
	"errors"
	"testing"
)

// TestS2NonceWindow: the receiver tries up to five nonces ahead, so a few
// frames lost on the air cost nothing; more need a resynchronisation; a
// repeated frame is refused.
func TestS2NonceWindow(t *testing.T) {
	var k netKeys
	copy(k.S2AC[:], rnd(16))
	copy(k.S0[:], rnd(16))
	copy(k.S2Auth[:], rnd(16))
	copy(k.S2Unauth[:], rnd(16))
	host, node := newSecurity(), newSecurity()
	host.session(1, 0xC0FFEE01)
	node.session(10, 0xC0FFEE01)
	host.setKeys(&k)
	node.setKeys(&k)
	classes := []secClass{secS2AC}

	// The host's entropy goes to the node; the node's first frame starts
	// the SPAN.
	rep := host.s2NonceReport(10)
	if _, err := node.s2OnNonceReport(1, rep[2:]); err != nil {
		t.Fatal(err)
	}
	send := func(cmd []byte) []byte {
		t.Helper()
		b, err := node.s2Wrap(1, secS2AC, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	recv := func(b []byte) ([]byte, error) {
		inner, _, err := host.s2Unwrap(10, b[2:], classes)
		return inner, err
	}
	first := send([]byte{0x25, 0x03, 0xFF})
	if got, err := recv(first); err != nil || !bytes.Equal(got, []byte{0x25, 0x03, 0xFF}) {
		t.Fatalf("first frame: % X, %v", got, err)
	}
	if _, err := recv(first); !errors.Is(err, errS2Duplicate) {
		t.Fatalf("the same frame again: %v, want a duplicate", err)
	}
	// Four frames lost: the fifth is within the window.
	for i := 0; i < 4; i++ {
		send([]byte{0x25, 0x03, 0x00})
	}
	if got, err := recv(send([]byte{0x25, 0x03, byte(0x42)})); err != nil || got[2] != 0x42 {
		t.Fatalf("after 4 lost frames: % X, %v", got, err)
	}
	// Five lost: out of step.
	for i := 0; i < 5; i++ {
		send([]byte{0x25, 0x03, 0x00})
	}
	if _, err := recv(send([]byte{0x25, 0x03, 0x01})); !errors.Is(err, errS2Decrypt) {
		t.Fatalf("after 5 lost frames: %v, want a decryption failure", err)
	}
	// The host's new nonce resynchronises.
	rep = host.s2NonceReport(10)
	if _, err := node.s2OnNonceReport(1, rep[2:]); err != nil {
		t.Fatal(err)
	}
	if got, err := recv(send([]byte{0x25, 0x03, 0x07})); err != nil || got[2] != 0x07 {
		t.Fatalf("after the resynchronisation: % X, %v", got, err)
	}
	// A frame under a class the node was not granted does not decrypt.
	if _, _, err := host.s2Unwrap(10, func() []byte {
		rep := host.s2NonceReport(10)
		node.s2OnNonceReport(1, rep[2:])
		b, _ := node.s2Wrap(1, secS2Auth, []byte{0x25, 0x03, 0xFF})
		return b[2:]
	}(), classes); !errors.Is(err, errS2Decrypt) {
		t.Fatalf("a frame of another class: %v", err)
	}
}

// TestS0NonceBounds: nonces handed out are single-use, expire, are bound
// to the node they were given to, and their number is bounded.
func TestS0NonceBounds(t *testing.T) {
	var k netKeys
	copy(k.S0[:], rnd(16))
	host, node := newSecurity(), newSecurity()
	host.session(1, 1)
	node.session(12, 1)
	host.setKeys(&k)
	node.setKeys(&k)
	rep := host.s0NonceReport(12)
	frame, err := node.s0Wrap(1, rep[2:], []byte{0x25, 0x03, 0xFF})
	must(t, err, "wrap")
	if got, err := host.s0Unwrap(12, s0Encap, frame[2:]); err != nil || !bytes.Equal(got, []byte{0x25, 0x03, 0xFF}) {
		t.Fatalf("S0 frame: % X, %v", got, err)
	}
	if _, err := host.s0Unwrap(12, s0Encap, frame[2:]); !errors.Is(err, errS0Nonce) {
		t.Fatalf("a nonce used twice: %v", err)
	}
	rep = host.s0NonceReport(12)
	frame, _ = node.s0Wrap(1, rep[2:], []byte{0x25, 0x03, 0xFF})
	if _, err := host.s0Unwrap(13, s0Encap, frame[2:]); !errors.Is(err, errS0Nonce) {
		t.Fatalf("another node's nonce: %v", err)
	}
	frame[5] ^= 0x01
	if _, err := host.s0Unwrap(12, s0Encap, frame[2:]); !errors.Is(err, errS0MAC) {
		t.Fatalf("a changed frame: %v", err)
	}
	for i := 0; i < 3*s0MaxNonces; i++ {
		host.s0NonceReport(byte(i))
	}
	if n := len(host.s0nonces); n > s0MaxNonces {
		t.Fatalf("%d nonces kept", n)
	}
}
