package export

import (
	"cmp"
	"context"
	"slices"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/mqttconn"
)

// On a tcp:// or ssl:// broker the sink publishes on the connection
// itself rather than through paho's Publish (paho still connects,
// subscribes, pings and reconnects): sendDirect writes every message the
// window has room for as PUBLISH packets in one go into the connection's
// write queue, and the connection's reader hands the broker's
// acknowledgements straight to the sink (wireEvents.Acked), all those of
// one read together. paho's path costs four goroutine hand-offs per
// message (the publishing goroutine to paho's queue, to its writer, its
// reader to its router, the router to the token's waiter) and a token
// and a store entry per message; this one a wake-up of the sender per
// batch and of the reader per read, and while the window is more than
// half full, a read per tick of the connection (mqttconn's pace) rather
// than one for each acknowledgement the broker writes.
//
// A message's packet identifier follows from its seq, so a message sent
// again (after a lost connection, or by a gateway that restarted) has the
// identifier it had: a QoS 2 broker that already has it does not deliver
// it twice. The window (Options.InFlight) is far below the 65,535
// identifiers.

// flight is a message written on the current connection and not yet
// acknowledged: its seq, the round it was taken in, the broker process
// that ran before it was written, and (QoS 2) whether the PUBREC came.
type flight struct {
	seq   uint64
	round uint64
	gen   uint64
	done  bool
	rec   bool
}

// packetID is the packet identifier of the message with seq.
func packetID(seq uint64) uint16 { return uint16(seq%65535) + 1 }

// wireEvents receives what happens on the connections (mqttconn.Direct).
type wireEvents struct{ s *Sink }

// Opened: the broker accepted c; the messages waiting are written on it.
func (w wireEvents) Opened(c *mqttconn.Conn) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wire != nil {
		s.unwireLocked()
	}
	s.wire = c
	close(s.wireUp)
	s.wake()
}

// Closed: c ended; what was written on it and not acknowledged is sent
// again on the next connection.
func (w wireEvents) Closed(c *mqttconn.Conn) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wire == c {
		s.unwireLocked()
	}
}

// unwireLocked forgets the current connection and puts the messages in
// flight on it back in the queue, at their place.
func (s *Sink) unwireLocked() {
	s.head -= len(s.flights)
	clear(s.flights)
	s.flights = s.flights[:0]
	s.wire = nil
	s.wireUp = make(chan struct{})
	s.wake()
}

// wake tells sendDirect that something changed (capacity 1).
func (s *Sink) wake() {
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// Acked records the acknowledgements read from c: a message counts as
// acknowledged once every message written before it on c is, and only
// if the broker process that runs now is the one that ran before it was
// written (see ackLoop). It answers busy while at least half the window
// (and busyFlights) is still in flight: c then reads on a tick, taking a
// tick's acknowledgements in one read, and the sender answers them with
// one write.
func (w wireEvents) Acked(c *mqttconn.Conn, acks []mqttconn.Ack) (busy bool) {
	s := w.s
	gen := s.gen()
	var rel []byte
	s.mu.Lock()
	if s.wire != c || len(s.flights) == 0 {
		s.mu.Unlock()
		return false
	}
	for _, a := range acks {
		i, ok := s.flightOf(a.ID)
		if !ok {
			continue // not in flight: an answer to a message sent before a rewind
		}
		f := &s.flights[i]
		switch {
		case a.Kind == mqttconn.Pubrec && s.opts.QoS == 2:
			f.rec = true
			rel = mqttconn.AppendPubrel(rel, a.ID)
		case a.Kind == mqttconn.Puback && s.opts.QoS == 1, a.Kind == mqttconn.Pubcomp && s.opts.QoS == 2:
			f.done = true
		}
	}
	full := len(s.flights) >= s.opts.InFlight
	n := 0
	for n < len(s.flights) && s.flights[n].done {
		n++
	}
	k := n // how many count
	for i := range n {
		if s.flights[i].gen != gen {
			k = i
			break
		}
	}
	if k < n {
		// Acknowledged by another broker process than the one that ran
		// before the message was written: send it, and what follows,
		// again.
		s.head -= len(s.flights) - k
		clear(s.flights[k:])
		s.flights = s.flights[:k]
		s.wake()
	}
	if k > 0 {
		ok := make([]ack, k)
		for i, f := range s.flights[:k] {
			ok[i] = ack{seq: f.seq, round: f.round, gen: f.gen}
		}
		m := copy(s.flights, s.flights[k:])
		clear(s.flights[m:])
		s.flights = s.flights[:m]
		s.ackedLocked(ok) // a rewind there empties flights
		metrics.ExportMessages.Add(float64(k))
		if full {
			s.wake()
		}
	}
	busy = len(s.flights) >= max(s.opts.InFlight/2, busyFlights)
	s.mu.Unlock()
	if rel != nil {
		_, _ = c.Write(rel) // a write error ends c: Closed follows
	}
	return busy
}

// busyFlights is the fewest messages in flight for which Acked has the
// connection read on a tick (mqttconn's pace): only where a tick's
// acknowledgements are a small part of what is in flight does waiting
// for the tick not slow the broker down.
const busyFlights = 64

// flightOf returns the index in flights of the message with packet
// identifier id. Seqs in flight ascend but may skip (records lost to a
// damaged spool), so the identifier names one seq in each 65,535 from the
// first in flight on.
func (s *Sink) flightOf(id uint16) (int, bool) {
	first, last := s.flights[0].seq, s.flights[len(s.flights)-1].seq
	d := (uint64(id) + 65535 - uint64(packetID(first))) % 65535
	for seq := first + d; seq <= last; seq += 65535 {
		if i, ok := slices.BinarySearchFunc(s.flights, seq, func(f flight, seq uint64) int { return cmp.Compare(f.seq, seq) }); ok {
			return i, true
		}
	}
	return 0, false
}

// sendDirect writes waiting messages on the current connection, at most
// InFlight unacknowledged, until ctx ends.
func (s *Sink) sendDirect(ctx context.Context) {
	var batch []entry
	var buf []byte
	var written []ack
	for {
		gen := s.gen() // before the messages are written (see Acked)
		s.mu.Lock()
		c, up := s.wire, s.wireUp
		room := s.opts.InFlight - len(s.flights)
		if c == nil || room <= 0 || s.head == len(s.queue) {
			s.mu.Unlock()
			var opened, more <-chan struct{}
			if c == nil {
				opened = up
			} else {
				more = s.more
			}
			select {
			case <-opened:
			case <-more:
			case <-ctx.Done():
				return
			}
			continue
		}
		n := min(room, len(s.queue)-s.head)
		batch = append(batch[:0], s.queue[s.head:s.head+n]...)
		s.head += n
		round := s.round
		if s.opts.QoS > 0 {
			for _, e := range batch {
				s.flights = append(s.flights, flight{seq: e.seq, round: round, gen: gen})
			}
		}
		sentTo := s.sentTo
		s.sentTo = max(s.sentTo, batch[n-1].seq+1)
		s.mu.Unlock()
		buf = buf[:0]
		for _, e := range batch {
			topic, retain := e.target()
			buf = mqttconn.AppendPublish(buf, topic, e.payload, s.opts.QoS, retain || s.opts.Retain, e.seq < sentTo, packetID(e.seq))
		}
		_, err := c.Write(buf) // an error ends c: Closed puts the batch back
		if err == nil && s.opts.QoS == 0 {
			// QoS 0: handed over is all there is.
			written = written[:0]
			for _, e := range batch {
				written = append(written, ack{seq: e.seq, round: round, gen: gen})
			}
			s.acked(written)
			metrics.ExportMessages.Add(float64(len(written)))
		}
		clear(batch)
	}
}
