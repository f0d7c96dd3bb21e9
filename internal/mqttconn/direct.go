package mqttconn

import "github.com/osgate/osgate/internal/mqttwire"

// Direct is told what happens on the connections CoalesceDirect dials.
// Its methods are called from paho's goroutines (the reader's, or the
// one that closes the connection) and must not block.
type Direct interface {
	// Opened: the broker accepted the connection (a CONNACK with return
	// code 0 was read); the owner may publish on it from now on.
	Opened(c *Conn)
	// Acked: acknowledgements read from c, in the order they came. It
	// returns busy when many more are due: c then reads on a tick rather
	// than at each arrival (see pace).
	Acked(c *Conn, acks []Ack) (busy bool)
	// Closed: c ended (read or write error, or closed); called once.
	Closed(c *Conn)
}

// Packet types of the acknowledgements a Direct owner receives.
const (
	Puback  = 4 // QoS 1: the broker has the message
	Pubrec  = 5 // QoS 2, first step: answer with a PUBREL (AppendPubrel)
	Pubcomp = 7 // QoS 2: the broker has the message
)

// Ack is one acknowledgement: its packet type (Puback, Pubrec, Pubcomp)
// and packet identifier.
type Ack struct {
	Kind byte
	ID   uint16
}

// demux splits the broker's byte stream: acknowledgements (PUBACK,
// PUBREC, PUBCOMP) are taken out, everything else passes through to paho
// unchanged, and an accepting CONNACK is noticed on its way through. A
// packet that passes through is streamed (its body is not held), so only
// a fixed header, an acknowledgement or a CONNACK (at most 5 bytes) waits
// here for the rest of it. A stream whose length field is malformed is
// passed through from there on, for paho to reject.
type demux struct {
	part [5]byte // the start of a packet not complete yet
	n    int     // bytes in part
	hl   int     // length of the fixed header in part, 0 until complete
	pass int     // bytes of the current packet still to pass through
	raw  bool    // malformed: pass everything through
}

// feed appends to out what paho is to read of in, and returns it with
// the acknowledgements in in and whether a CONNACK accepted the
// connection.
func (d *demux) feed(out, in []byte) ([]byte, []Ack, bool) {
	var acks []Ack
	opened := false
	for len(in) > 0 {
		if d.raw {
			return append(out, in...), acks, opened
		}
		if d.pass > 0 {
			k := min(d.pass, len(in))
			out = append(out, in[:k]...)
			d.pass -= k
			in = in[k:]
			continue
		}
		// Gather the fixed header: a type byte and 1 to 4 length bytes.
		for d.hl == 0 && len(in) > 0 {
			d.part[d.n] = in[0]
			d.n++
			in = in[1:]
			if d.n < 2 {
				continue
			}
			if _, _, done, err := mqttwire.Length(d.part[1:d.n]); done {
				d.hl = d.n
			} else if err != nil { // no last length byte in four: malformed
				out = append(out, d.part[:d.n]...)
				d.n, d.raw = 0, true
				break
			}
		}
		if d.hl == 0 {
			continue // wait for more (or pass the rest through)
		}
		hl := d.hl
		rl, _, _, _ := mqttwire.Length(d.part[1:hl])
		kind := d.part[0] >> 4
		small := rl == 2 && hl+2 <= len(d.part) && (kind == Puback || kind == Pubrec || kind == Pubcomp || kind == 2)
		if !small {
			out = append(out, d.part[:hl]...)
			d.n, d.hl, d.pass = 0, 0, rl
			continue
		}
		// An acknowledgement or a CONNACK: 2 bytes of body, kept until
		// both are here (part has room: the header is 2 bytes).
		for d.n < hl+2 && len(in) > 0 {
			d.part[d.n] = in[0]
			d.n++
			in = in[1:]
		}
		if d.n < hl+2 {
			continue
		}
		b := d.part[hl:d.n]
		if kind == 2 {
			opened = opened || b[1] == 0
			out = append(out, d.part[:d.n]...)
		} else {
			acks = append(acks, Ack{Kind: kind, ID: uint16(b[0])<<8 | uint16(b[1])})
		}
		d.n, d.hl = 0, 0
	}
	return out, acks, opened
}

// AppendPublish appends a PUBLISH packet to b: QoS 0 packets carry no
// identifier; dup marks a message sent before.
func AppendPublish(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16) []byte {
	flags := byte(3<<4) | qos<<1
	if retain {
		flags |= 1
	}
	if dup && qos > 0 {
		flags |= 1 << 3
	}
	rl := 2 + len(topic) + len(payload)
	if qos > 0 {
		rl += 2
	}
	b = mqttwire.AppendLength(append(b, flags), rl)
	b = append(b, byte(len(topic)>>8), byte(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = append(b, byte(id>>8), byte(id))
	}
	return append(b, payload...)
}

// AppendPubrel appends the PUBREL that answers a PUBREC of id.
func AppendPubrel(b []byte, id uint16) []byte {
	return append(b, 6<<4|2, 2, byte(id>>8), byte(id))
}
