package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/internal/testpeer"
)

// retainFleet publishes n gateways' status documents and bridge states,
// retained, on the broker at url: what n bridged gateways leave there
// (a document of the size the gateways publish, about 400 bytes).
func retainFleet(b *testing.B, url string, n int) {
	b.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-gateways"))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	spool, cohort := 0, 0
	for i := range n {
		id := fmt.Sprintf("gw-%05d", i)
		doc, _ := json.Marshal(export.GatewayStatus{ID: id, State: "online", Since: "2026-12-06T12:00:00.000Z", Version: "v1.4.0",
			Boot: "9f2c41d07a5be316", At: "2026-12-06T12:05:00.000Z", Uptime: 300,
			Health:  &export.HealthStatus{Status: "degraded", Reasons: []string{"device meter-7 offline since 2026-12-06T12:02:11Z: every channel failed (4)"}},
			Config:  &export.ConfigStatus{Version: "25e64790de4a", Origin: "remote"},
			OTA:     &export.OTAStatus{State: "confirmed", Status: "running v1.4.0", Cohort: &cohort},
			Devices: map[string]int{"online": 11, "offline": 1}, Spool: &spool,
			Labels: map[string]string{"site": fmt.Sprintf("site-%d", i%50), "customer": "acme", "hw": "pi4"}})
		for _, m := range []struct {
			topic   string
			payload []byte
		}{{"status/" + id, doc}, {"status/" + id + "/bridge", []byte("1")}} {
			if tok := c.Publish(m.topic, 1, true, m.payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				b.Fatalf("publish: %v", tok.Error())
			}
		}
	}
}

// BenchmarkFleetView: how long `fleet ls` takes to have every gateway of
// a fleet of N from the cloud broker's retained documents (connect,
// subscribe, receive and decode all), without the half second of quiet
// it waits for afterwards. Baseline BenchmarkFleetViewBaseline: a plain
// paho client receiving the same retained messages and decoding nothing.
func BenchmarkFleetView(b *testing.B) {
	for _, n := range []int{200, 2000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			mq := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{})
			retainFleet(b, mq.URL(), n)
			s := &Settings{Broker: mq.URL()}
			for b.Loop() {
				ctx := context.Background()
				c, err := Dial(ctx, s)
				if err != nil {
					b.Fatal(err)
				}
				w, err := c.Watch(ctx)
				if err != nil {
					b.Fatal(err)
				}
				// Look every millisecond: waking at every message to count
				// the view would cost the benchmark more than the view.
				deadline := time.Now().Add(30 * time.Second)
				for {
					if docs, bridges := w.counts(); docs == n && bridges == n {
						break
					} else if time.Now().After(deadline) {
						b.Fatalf("%d documents and %d bridge states of %d gateways after 30 s", docs, bridges, n)
					}
					time.Sleep(time.Millisecond)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/gateway")
		})
	}
}

// counts is how many gateways' documents and bridge states arrived
// (without copying and sorting the view as Gateways does).
func (w *Watch) counts() (docs, bridges int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.gws {
		if g.Doc.State != "" {
			docs++
		}
		if g.Bridge != "" {
			bridges++
		}
	}
	return docs, bridges
}

func BenchmarkFleetViewBaseline(b *testing.B) {
	for _, n := range []int{200, 2000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			mq := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{})
			retainFleet(b, mq.URL(), n)
			for b.Loop() {
				var got atomic.Int64
				done := make(chan struct{})
				c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(mq.URL()).SetClientID("bench-baseline").SetCleanSession(true).SetOrderMatters(false))
				if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					b.Fatalf("connect: %v", tok.Error())
				}
				tok := c.SubscribeMultiple(map[string]byte{"status/+": 0, "status/+/bridge": 0}, func(mqtt.Client, mqtt.Message) {
					if got.Add(1) == int64(2*n) {
						close(done)
					}
				})
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					b.Fatalf("subscribe: %v", tok.Error())
				}
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					b.Fatalf("%d of %d messages after 30 s", got.Load(), 2*n)
				}
				c.Disconnect(250)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/gateway")
		})
	}
}
