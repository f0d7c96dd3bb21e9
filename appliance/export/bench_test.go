package export

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/testpeer"
)

// benchPayload is the size of a typical device message (7 channels).
var benchPayload = []byte(`{"ts":"2026-11-24T13:41:00.123Z","values":{"voltage_l1":230.1,"voltage_l2":229.8,"voltage_l3":231.4,"current_l1":12.25,"power":8450,"relay":true,"energy":null},"units":{"voltage_l1":"V","voltage_l2":"V","voltage_l3":"V","current_l1":"A","power":"W"},"quality":{"energy":"bad"},"errors":{"energy":"timeout"}}`)

// BenchmarkSinkPublish: messages through the Sink into a real Mosquitto at
// QoS 1, from parallel publishers (as the pipeline does), counted when the
// broker has acknowledged every one.
func BenchmarkSinkPublish(b *testing.B) {
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	s, err := New(Options{URL: br.URL(), ClientID: "osgate-bench", QoS: 1, StoreDir: b.TempDir(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !s.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Publish(ctx, "telemetry/gw/bench", benchPayload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for s.Queued() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPahoBaseline: the same messages published with a plain paho
// client at QoS 1 (memory store, no spool), counted when every token
// completed: the baseline BenchmarkSinkPublish is compared against.
func BenchmarkPahoBaseline(b *testing.B) { benchPaho(b, mqtt.NewMemoryStore()) }

// BenchmarkPahoFileStore: the baseline with paho's own file store, which
// writes, renames and deletes one file per message; why the sink keeps
// in-flight messages in its spool instead.
func BenchmarkPahoFileStore(b *testing.B) { benchPaho(b, mqtt.NewFileStore(b.TempDir())) }

func benchPaho(b *testing.B, store mqtt.Store) {
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("paho-bench").
		SetCleanSession(false).SetStore(store))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	var mu sync.Mutex
	var failed int
	b.RunParallel(func(pb *testing.PB) {
		var toks []mqtt.Token
		for pb.Next() {
			toks = append(toks, c.Publish("telemetry/gw/bench", 1, false, benchPayload))
		}
		for _, t := range toks {
			t.Wait()
			if t.Error() != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}
	})
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d publishes failed", failed)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// quietBroker turns the test broker's per-message debug log off (it keeps
// errors and warnings): the test process copies everything the broker
// logs, which would count in the benchmark's CPU and load the machine.
const quietBroker = "log_type none\nlog_type error\nlog_type warning"

// BenchmarkSpoolAppend: one record per op written to the spool, as
// Publish does for a message that arrives alone: the cost of keeping it,
// without the broker. "message" is a device message of a few channels
// (200 bytes), "poll" one of a poll of 1,000 registers (24 kB).
func BenchmarkSpoolAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"message", 200}, {"poll", 24 << 10}} {
		b.Run(c.name, func(b *testing.B) {
			s, _ := mustOpen(b, b.TempDir())
			defer s.close()
			payload := bytes.Repeat([]byte("v"), c.size)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.append("telemetry/gw-bench/meter-1", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
