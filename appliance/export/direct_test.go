package export

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// TestSinkDirectQoS2AndIDWrap: the sink writes its PUBLISH packets itself
// and takes the broker's acknowledgements off the connection. At QoS 1,
// 70,000 messages from four publishers, more than the 65,535 packet
// identifiers: every one arrives and the queue empties, so each
// acknowledgement was matched to its message across the identifiers'
// wrap. At QoS 2 (PUBREC, PUBREL, PUBCOMP), 5,000: every one arrives
// (with 512 in flight, Mosquitto dropped all but a few hundred while
// acknowledging each).
func TestSinkDirectQoS2AndIDWrap(t *testing.T) {
	for _, c := range []struct {
		qos byte
		n   int
	}{{1, 70000}, {2, 5000}} {
		qos, n := c.qos, c.n
		t.Run("qos"+strconv.Itoa(int(qos)), func(t *testing.T) {
			b := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Extra: "log_type none\nlog_type error\nlog_type warning"})
			sub := testpeer.Subscribe(t, b.URL(), testpeer.SubscriberOptions{Filter: "telemetry/#", Key: seqKey})
			s, _ := runSink(t, Options{URL: b.URL(), ClientID: "osgate-direct", StoreDir: t.TempDir(), QoS: qos})
			const publishers = 4
			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					defer cancel()
					for i := p; i < n; i += publishers {
						if err := s.Publish(ctx, "telemetry/gw/direct", []byte("seq="+strconv.Itoa(i))); err != nil {
							t.Errorf("publish %d: %v", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			// Missing looks at every key: wait for the count first.
			sub.WaitDistinct(n, 3*time.Minute)
			waitAll(t, sub, seqKeys(0, n), time.Minute)
			waitFor(t, "the queue to empty", time.Minute, func() bool { return s.Queued() == 0 })
		})
	}
}

// TestFlightOf: an acknowledgement finds its message among those in
// flight by packet identifier, also where the seqs skip (records lost to
// a damaged spool) and across the identifiers' wrap; one not in flight
// finds nothing.
func TestFlightOf(t *testing.T) {
	s := &Sink{}
	for _, seq := range []uint64{65530, 65531, 65533, 65534, 65536, 131075} {
		s.flights = append(s.flights, flight{seq: seq})
	}
	for i, f := range s.flights {
		if got, ok := s.flightOf(packetID(f.seq)); !ok || got != i {
			t.Errorf("seq %d (id %d): found %d, %v; want %d", f.seq, packetID(f.seq), got, ok, i)
		}
	}
	for _, seq := range []uint64{65532, 65535, 65537, 131074} {
		if got, ok := s.flightOf(packetID(seq)); ok {
			t.Errorf("seq %d is not in flight, found %d", seq, got)
		}
	}
}
