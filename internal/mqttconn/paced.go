package mqttconn

import (
	"net"
	"time"
)

// While the owner of a direct connection has many messages waiting for
// their acknowledgements (Direct.Acked returned busy), the connection
// reads on a tick instead of at each arrival. A broker that acknowledges
// one message at a time (Mosquitto writes each PUBACK on its own)
// otherwise wakes the gateway for every one or two, and on a machine
// whose CPUs are busy each wake-up is a context switch, often on the
// broker's own CPU. So the socket is told not to wake the process for
// less than pacedLowat bytes (SO_RCVLOWAT: without it, Go's poller would
// still be woken by every arrival, read or not), and the reader takes
// what has come every pace: one read for a tick's acknowledgements, and
// the sender answers them with one write. An acknowledgement is read at
// most about pace later; the window, not the tick, keeps the broker busy
// (512 messages in flight are many ticks' worth).
const (
	pace       = time.Millisecond
	pacedLowat = 16 << 10
	// pacedIdle is how many ticks in a row may find nothing before the
	// reader goes back to waiting for arrivals (a stalled broker is not
	// polled for ever).
	pacedIdle = 8
)

// source is what the connection's buffer reads from: the connection, at
// each arrival or, paced, on a tick.
type source struct {
	c     net.Conn
	raw   rawReader // not ok: the connection cannot be read on a tick (TLS)
	paced bool      // set by the reader from Direct.Acked
	lowat bool      // SO_RCVLOWAT is raised
}

func (s *source) Read(p []byte) (int, error) {
	if s.paced && s.raw.ok() {
		if !s.lowat {
			s.lowat = s.raw.setLowat(pacedLowat) == nil // refused: read at each arrival
		}
		if s.lowat {
			for range pacedIdle {
				time.Sleep(pace)
				if n, ok, err := s.raw.tryRead(p); ok {
					return n, err
				}
			}
		}
		s.paced = false
	}
	if s.lowat {
		// A read waiting with the mark raised would not see a packet
		// smaller than it: if it cannot be lowered, the connection ends
		// (and paho connects again).
		if err := s.raw.setLowat(1); err != nil {
			return 0, err
		}
		s.lowat = false
	}
	return s.c.Read(p)
}
