package mqtt

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// The benchmarks publish b.N QoS 1 messages of a three-channel JSON meter
// payload to a real Mosquitto and time until all of them came out of the
// far end: BenchmarkForward through the connector (mapping, manual
// acknowledgement, emit), BenchmarkBaselinePaho through a plain paho
// subscriber that only counts them. Run both in one go and compare:
//
//	go test -run '^$' -bench . -benchtime 20000x ./drivers/mqtt
//
// msgs/s is messages per second of wall time; cpu-ms/1k-msg is the CPU
// time of this process (publisher included, the broker not) per 1,000
// messages.

const benchPayload = `{"ts":"2026-11-24T13:41:00.123Z","voltage":[230.1,229.9],"energy":{"total":1234.5}}`

func BenchmarkForward(b *testing.B) {
	broker := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	settings := fmt.Sprintf(`{"brokers":[{"url":%q,"tls":false}],"mappings":%s}`, broker.URL(), testMappings)
	c := newConnector(b, "bench", settings, nil)
	var readings atomic.Int64
	var probes atomic.Int64
	done := make(chan struct{})
	want := int64(3 * b.N)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emit := func(r core.Reading) error {
		if r.Device == "probe" {
			probes.Add(1)
			return nil
		}
		if readings.Add(1) == want {
			close(done)
		}
		return nil
	}
	lerr := make(chan error, 1)
	go func() { lerr <- c.Listen(ctx, core.PerReading(emit)) }()
	pub := newPublisher(b, broker.URL(), pubOpts{id: "bench-pub"})
	waitUntil(b, func() bool { pub.publish("sensors/probe/x", "1"); return probes.Load() > 0 })
	runBench(b, pub, done)
	cancel()
	<-lerr
}

func BenchmarkBaselinePaho(b *testing.B) {
	broker := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	var msgs, probes atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	o := paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("baseline").SetCleanSession(false)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if m.Topic() == "sensors/probe/x" {
			probes.Add(1)
			return
		}
		if msgs.Add(1) == want {
			close(done)
		}
	})
	sub := paho.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("baseline connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("site/+/meter/+/state", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("baseline subscribe: %v", tok.Error())
	}
	if tok := sub.Subscribe("sensors/+/+", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("baseline subscribe: %v", tok.Error())
	}
	pub := newPublisher(b, broker.URL(), pubOpts{id: "bench-pub"})
	waitUntil(b, func() bool { pub.publish("sensors/probe/x", "1"); return probes.Load() > 0 })
	runBench(b, pub, done)
}

// runBench publishes b.N messages without waiting for each PUBACK and
// waits until done is closed.
func runBench(b *testing.B, pub *publisher, done chan struct{}) {
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	var last paho.Token
	for i := range b.N {
		last = pub.client.Publish(fmt.Sprintf("site/s/meter/m%d/state", i%100), 1, false, benchPayload)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatal("not every message came through within 10 minutes")
	}
	b.StopTimer()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	last.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N)*1000, "cpu-ms/1k-msg")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitUntil(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("the subscriber never saw a probe")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quietBroker turns the test broker's per-message debug log off (it keeps
// errors and warnings): the test process copies everything the broker
// logs, which would count in the benchmark's CPU and load the machine.
const quietBroker = "log_type none\nlog_type error\nlog_type warning"
