// Package e2e runs the MQTT connector inside the whole gateway: field
// brokers → osgate (mqtt connector, pipeline, export) → the local managed
// broker. It is a package of its own so that the driver's own tests do not
// depend on the appliance building.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/config"
	_ "github.com/osgate/osgate/drivers/mqtt"
	"github.com/osgate/osgate/internal/testpeer"
)

// gateway runs osgate on cfg (with its STATE, BROKER and MOSQUITTO
// placeholders filled in) and returns the URL of its local broker.
func gateway(tb testing.TB, cfg string) string {
	tb.Helper()
	port := testpeer.FreePort(tb)
	r := strings.NewReplacer("STATE", tb.TempDir(), "BROKER", testpeer.Addr(port), "MOSQUITTO", testpeer.LookPath(tb, "mosquitto", "mosquitto"))
	c, err := config.Parse([]byte(r.Replace(cfg)))
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	g, err := appliance.New(c, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("gateway Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			tb.Error("gateway did not stop within 60s")
		}
	})
	testpeer.WaitTCP(tb, testpeer.Addr(port), 30*time.Second)
	return "tcp://" + testpeer.Addr(port)
}

const envelope = `{
  "gateway": {"id": "gw-e2e", "state_dir": "STATE"},
  "broker": {"listen": "BROKER", "binary": "MOSQUITTO"},
  "rpc": {"listen": "off"},
  "connectors": [%s]
}`

// exported is an export message as the test reads it.
type exported struct {
	Values map[string]any    `json:"values"`
	Units  map[string]string `json:"units"`
}

func publisher(tb testing.TB, url, user, pass, ca string) paho.Client {
	tb.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("e2e-pub-%d", time.Now().UnixNano())).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(true)
	if ca != "" {
		o.SetTLSConfig(tlsConfig(tb, ca))
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		tb.Fatalf("publisher %s: %v", url, tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(tb testing.TB, c paho.Client, topic, payload string) {
	tb.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		tb.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestFieldBrokersToExport: two field brokers, one with TLS and a
// password, publish to several topics; what osgate exports on its local
// broker matches, with the configured device's renaming and transforms.
func TestFieldBrokersToExport(t *testing.T) {
	plain := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	secure := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true, Users: map[string]string{"osgate": "pw1", "dev": "pw2"}})
	connector := fmt.Sprintf(`{"name": "field", "type": "mqtt",
	  "settings": {
	    "brokers": [{"name": "plain", "url": %q, "tls": false}, {"name": "secure", "url": %q, "ca_file": %q, "username": "osgate", "password": "pw1"}],
	    "mappings": [
	      {"topic": "site/{site}/meter/{device}/state", "device": "{site}-{device}",
	       "channels": [{"name": "voltage", "path": "u[0]", "unit": "V"}, {"name": "energy", "path": "e", "unit": "kWh"}]},
	      {"topic": "sensors/{device}/{channel}", "payload": "text", "channels": [{"name": "{channel}"}]}]},
	  "devices": [{"name": "meter-7", "source": "north-m7", "interval": "1m",
	    "channels": [{"name": "energy", "scale": 1000, "unit": "Wh"}, {"name": "voltage", "rename": "u_l1"}]}]}`,
		plain.URL(), secure.URL(), secure.CAFile())
	local := gateway(t, fmt.Sprintf(envelope, connector))
	sub := testpeer.Subscribe(t, local, testpeer.SubscriberOptions{ClientID: "e2e-sub", Filter: "telemetry/gw-e2e/#"})

	pp := publisher(t, plain.URL(), "", "", "")
	ps := publisher(t, secure.URL(), "dev", "pw2", secure.CAFile())
	want := map[string]any{
		"meter-7/u_l1":         230.5,
		"meter-7/energy":       1234500.0,
		"south-m2/voltage":     231.0,
		"hall/temperature":     21.5,
		"door/state":           "open",
		"south-m2/energy":      7.0,
		"hall/humidity":        40.0,
		"meter-7/units/u_l1":   "V",
		"meter-7/units/energy": "Wh",
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		// Publish until the subscriptions are in place; then compare.
		publish(t, pp, "site/north/meter/m7/state", `{"u":[230.5],"e":1234.5}`)
		publish(t, pp, "sensors/hall/temperature", "21.5")
		publish(t, ps, "site/south/meter/m2/state", `{"u":[231],"e":7}`)
		publish(t, ps, "sensors/door/state", "open")
		publish(t, ps, "sensors/hall/humidity", "40")
		got := map[string]any{}
		for _, m := range sub.Messages() {
			dev := strings.TrimPrefix(m.Topic, "telemetry/gw-e2e/")
			var p exported
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				t.Fatalf("export payload %s: %v", m.Payload, err)
			}
			for k, v := range p.Values {
				got[dev+"/"+k] = v
			}
			for k, u := range p.Units {
				got[dev+"/units/"+k] = u
			}
		}
		miss := []string{}
		for k, v := range want {
			if got[k] != v {
				miss = append(miss, fmt.Sprintf("%s=%v (got %v)", k, v, got[k]))
			}
		}
		if len(miss) == 0 {
			if _, ok := got["north-m7/voltage"]; ok {
				t.Errorf("the configured device was also exported under its discovered name")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not exported within 90s: %v\ngot %v", miss, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// BenchmarkFieldToLocal forwards b.N three-reading meter messages from a
// field broker through osgate to its local broker and times until every
// export message arrived (one per field message: a listener's readings of
// one device go out together). BenchmarkBaselineBridge does
// the same with a plain paho client that republishes each message as it is
// without waiting for the local broker: the ceiling of an MQTT-to-MQTT
// forwarder in Go on this machine.
//
//	go test -run '^$' -bench . -benchtime 10000x ./drivers/mqtt/e2e
func BenchmarkFieldToLocal(b *testing.B) {
	field := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	connector := fmt.Sprintf(`{"name": "field", "type": "mqtt",
	  "settings": {"brokers": [{"url": %q, "tls": false}],
	    "mappings": [{"topic": "site/{site}/meter/{device}/state",
	      "channels": [{"name": "u1", "path": "u[0]"}, {"name": "u2", "path": "u[1]"}, {"name": "e", "path": "e"}]},
	      {"topic": "probe/{device}", "payload": "text", "channels": [{"name": "v"}]}]}}`, field.URL())
	local := gateway(b, fmt.Sprintf(envelope, connector))
	run(b, field.URL(), local, 1) // one export message per field message (its device's readings together)
}

func BenchmarkBaselineBridge(b *testing.B) {
	field := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	local := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	out := paho.NewClient(paho.NewClientOptions().AddBroker(local.URL()).SetClientID("bridge-out"))
	if tok := out.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer out.Disconnect(100)
	in := paho.NewClient(paho.NewClientOptions().AddBroker(field.URL()).SetClientID("bridge-in").SetCleanSession(false))
	if tok := in.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer in.Disconnect(100)
	forward := func(_ paho.Client, m paho.Message) {
		// Not waiting for the local broker's PUBACK: the fastest possible
		// forwarder, with none of osgate's guarantees.
		out.Publish("telemetry/gw-e2e/"+strings.ReplaceAll(m.Topic(), "/", "-"), 1, false, m.Payload())
	}
	for _, f := range []string{"site/+/meter/+/state", "probe/+"} {
		if tok := in.Subscribe(f, 1, forward); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
	}
	run(b, field.URL(), local.URL(), 1)
}

// rate paces the field publisher of the benchmarks (messages a second; 0
// publishes as fast as it can), to see the cost per message at the rates
// a gateway meets:
//
//	go test -run '^$' -bench . -benchtime 5000x ./drivers/mqtt/e2e -args -rate 1000
var rate = flag.Int("rate", 0, "field messages a second in the benchmarks (0: as fast as possible)")

// run publishes b.N messages on field and waits for perMsg*b.N export
// messages on local.
func run(b *testing.B, field, local string, perMsg int) {
	var got, probes atomic.Int64
	want := int64(perMsg * b.N)
	done := make(chan struct{})
	o := paho.NewClientOptions().AddBroker(local).SetClientID("bench-sub")
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if strings.Contains(m.Topic(), "probe") {
			probes.Add(1)
			return
		}
		if got.Add(1) == want {
			close(done)
		}
	})
	sub := paho.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("telemetry/#", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pub := publisher(b, field, "", "", "")
	deadline := time.Now().Add(60 * time.Second)
	for probes.Load() == 0 {
		publish(b, pub, "probe/probe", "1")
		if time.Now().After(deadline) {
			b.Fatal("nothing came through within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if *rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*rate))); d > 0 {
				time.Sleep(d)
			}
		}
		pub.Publish(fmt.Sprintf("site/s/meter/m%d/state", i%100), 1, false, `{"u":[230.1,229.9],"e":1234.5}`)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d export messages within 10 minutes", got.Load(), want)
	}
	b.StopTimer()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N)*1000, "cpu-ms/1k-msg")
}

// cpuTime is this process's CPU time: osgate (or the baseline), the
// publisher and the counting subscriber; not the brokers.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quietBroker turns the test broker's per-message debug log off (it keeps
// errors and warnings): the test process copies everything the broker
// logs, which would count in the benchmark's CPU and load the machine.
const quietBroker = "log_type none\nlog_type error\nlog_type warning"
