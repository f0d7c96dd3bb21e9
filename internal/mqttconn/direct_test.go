package mqttconn

import (
	"bytes"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// stream is what a broker sends a publisher: a CONNACK, acknowledgements
// of every kind, a PINGRESP, a SUBACK and a PUBLISH (for a subscription)
// whose body is longer than one read.
func stream(t testing.TB) (all, rest []byte, acks []Ack) {
	var b, r bytes.Buffer
	write := func(p packets.ControlPacket, keep bool) {
		var one bytes.Buffer
		if err := p.Write(&one); err != nil {
			t.Fatal(err)
		}
		b.Write(one.Bytes())
		if keep {
			r.Write(one.Bytes())
		}
	}
	ca := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	write(ca, true)
	for i, kind := range []byte{Puback, Pubrec, Pubcomp, Puback} {
		var p packets.ControlPacket
		id := uint16(0x1234 + i*0x100)
		switch kind {
		case Puback:
			a := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			a.MessageID = id
			p = a
		case Pubrec:
			a := packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket)
			a.MessageID = id
			p = a
		case Pubcomp:
			a := packets.NewControlPacket(packets.Pubcomp).(*packets.PubcompPacket)
			a.MessageID = id
			p = a
		}
		write(p, false)
		acks = append(acks, Ack{Kind: kind, ID: id})
	}
	write(packets.NewControlPacket(packets.Pingresp), true)
	sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	sa.MessageID = 7
	sa.ReturnCodes = []byte{0}
	write(sa, true)
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName = "config/gw"
	pub.Payload = bytes.Repeat([]byte("x"), 40000)
	write(pub, true)
	a := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
	a.MessageID = 65535
	write(a, false)
	acks = append(acks, Ack{Kind: Puback, ID: 65535})
	return b.Bytes(), r.Bytes(), acks
}

// TestDemux: in chunks of every size from 1 byte on, the acknowledgements
// are taken out in order, everything else passes through unchanged, and
// the accepting CONNACK is seen once.
func TestDemux(t *testing.T) {
	all, rest, want := stream(t)
	for size := 1; size <= len(all); size += 1 + size/3 {
		var d demux
		var out []byte
		var acks []Ack
		opened := 0
		for off := 0; off < len(all); off += size {
			o, a, op := d.feed(nil, all[off:min(off+size, len(all))])
			out = append(out, o...)
			acks = append(acks, a...)
			if op {
				opened++
			}
		}
		if !bytes.Equal(out, rest) {
			t.Fatalf("chunks of %d: %d bytes passed through, want %d unchanged", size, len(out), len(rest))
		}
		if len(acks) != len(want) {
			t.Fatalf("chunks of %d: acks %v, want %v", size, acks, want)
		}
		for i := range acks {
			if acks[i] != want[i] {
				t.Fatalf("chunks of %d: acks %v, want %v", size, acks, want)
			}
		}
		if opened != 1 {
			t.Fatalf("chunks of %d: CONNACK seen %d times, want once", size, opened)
		}
	}
	// A refused connection is not opened.
	var d demux
	if _, _, op := d.feed(nil, []byte{0x20, 2, 0, 5}); op {
		t.Error("a CONNACK refusing the connection (code 5) opened it")
	}
}

// FuzzDemux: any byte stream, cut anywhere, gives the same result as in
// one piece, never panics, and accounts for every byte: passed through,
// taken as an acknowledgement (4 bytes, 5 with a padded length), or (at
// most 5) waiting for the rest.
func FuzzDemux(f *testing.F) {
	all, _, _ := stream(f)
	f.Add(all, uint16(7))
	f.Add([]byte{0x40, 0x82, 0x80, 0x00, 0x12, 0x34, 0x50, 2, 0, 1}, uint16(3))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3}, uint16(1))
	f.Add([]byte{0x20, 2, 0, 0, 0x70, 2}, uint16(5))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		var whole demux
		out, acks, opened := whole.feed(nil, in)
		if taken := len(in) - len(out) - whole.n; whole.n > 5 || taken < 4*len(acks) || taken > 5*len(acks) {
			t.Fatalf("%d bytes in, %d out, %d acks, %d waiting", len(in), len(out), len(acks), whole.n)
		}
		var parts demux
		k := int(cut) % (len(in) + 1)
		o1, a1, op1 := parts.feed(nil, in[:k])
		o2, a2, op2 := parts.feed(nil, in[k:])
		if !bytes.Equal(append(o1, o2...), out) || len(a1)+len(a2) != len(acks) || (op1 || op2) != opened {
			t.Fatalf("cut at %d: the result differs from the stream in one piece", k)
		}
		for i, a := range append(a1, a2...) {
			if a != acks[i] {
				t.Fatalf("cut at %d: ack %d is %v, want %v", k, i, a, acks[i])
			}
		}
	})
}
