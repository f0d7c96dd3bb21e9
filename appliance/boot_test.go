package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestBootPathLosesNothing plays the appliance's boot, five times: the
// gateway and its managed Mosquitto start together, so the first readings
// are produced before the broker listens (where paho v1.5.1 with
// ConnectRetry was measured losing 1–24 % of messages). A persistent
// subscriber, offline during the runs, must find every reading of every
// run queued for it: the sequence 1..n of each run without a hole.
func TestBootPathLosesNothing(t *testing.T) {
	const rounds = 5
	state := t.TempDir()
	bport := testpeer.FreePort(t)
	broker := "tcp://" + testpeer.Addr(bport)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	run := func(connectors string, during func()) {
		t.Helper()
		doc := fmt.Sprintf(`{"gateway":{"id":"gw-boot","state_dir":%q},"broker":{"listen":%q},"rpc":{"listen":"off"},
			"connectors":[{"name":"sys","type":"system","devices":[{"name":"gateway","interval":"1h"}]}%s]}`, state, testpeer.Addr(bport), connectors)
		cfg, err := config.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		during()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("gateway: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("gateway did not stop")
		}
	}
	// Round 0 only creates the subscriber's persistent session.
	run("", func() {
		testpeer.WaitTCP(t, testpeer.Addr(bport), 30*time.Second)
		sub := testpeer.Subscribe(t, broker, testpeer.SubscriberOptions{ClientID: "t-boot", Filter: "telemetry/gw-boot/#"})
		sub.Close()
	})
	produced := map[string]int64{}
	for r := 1; r <= rounds; r++ {
		name := fmt.Sprintf("boot%d", r)
		run(fmt.Sprintf(`,{"name":%q,"type":"test-counter","devices":[{"name":%q,"interval":"10ms","channels":[{"name":"seq"}]}]}`, name, name), func() {
			deadline := time.Now().Add(60 * time.Second)
			for {
				v, ok := counters.Load(name)
				if ok {
					c := v.(*counter)
					c.mu.Lock()
					n := c.seq[name]
					c.mu.Unlock()
					if n >= 100 {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: counter did not reach 100 polls", r)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
		v, _ := counters.Load(name)
		c := v.(*counter)
		c.mu.Lock()
		produced[name] = c.seq[name]
		c.mu.Unlock()
	}
	// Now the subscriber comes back, with the broker up once more.
	got := map[string]map[int64]bool{}
	run("", func() {
		testpeer.WaitTCP(t, testpeer.Addr(bport), 30*time.Second)
		sub := testpeer.Subscribe(t, broker, testpeer.SubscriberOptions{ClientID: "t-boot", Filter: "telemetry/gw-boot/#"})
		defer sub.Close()
		deadline := time.Now().Add(60 * time.Second)
		for {
			for k := range got {
				delete(got, k)
			}
			for _, m := range sub.Messages() {
				dev := m.Topic[strings.LastIndex(m.Topic, "/")+1:]
				if !strings.HasPrefix(dev, "boot") {
					continue
				}
				var p payload
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if got[dev] == nil {
					got[dev] = map[int64]bool{}
				}
				got[dev][int64(p.Values["seq"].(float64))] = true
			}
			complete := true
			for dev, n := range produced {
				// The poll in progress when the gateway stopped may
				// not have been handed to the export: n-1 at least.
				for s := int64(1); s < n; s++ {
					if !got[dev][s] {
						complete = false
					}
				}
			}
			if complete {
				t.Logf("every reading arrived; %d duplicates (QoS 1 allows them)", sub.Duplicates())
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for dev, n := range produced {
			var missing []int64
			for s := int64(1); s < n; s++ {
				if !got[dev][s] {
					missing = append(missing, s)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%s: %d of %d readings lost: %v", dev, len(missing), n-1, missing)
			}
		}
	})
}
