package broker

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
	"github.com/osgate/osgate/internal/tlsconf"
)

// The cost of keeping acknowledged messages until the managed broker has
// saved them: the same 300-byte messages at QoS 1 into a managed
// Mosquitto, through the export sink with the broker's saves tracked
// (Durable), through the sink trusting the acknowledgement (AckOnly: what
// the sink does with an unmanaged broker), and through a plain paho
// publisher (Baseline), each timed until the broker acknowledged every
// message. "cloud-away" bridges the broker to a cloud that is down, so
// every message stays queued in the broker and every save writes all of
// them; "no-bridge" has nothing to queue.

var benchPayload = []byte(`{"ts":"2026-11-24T13:41:00.123Z","values":{"voltage_l1":230.1,"voltage_l2":229.8,"voltage_l3":231.4,"current_l1":12.25,"power":8450,"relay":true,"energy":null},"units":{"voltage_l1":"V","voltage_l2":"V","voltage_l3":"V","current_l1":"A","power":"W"},"quality":{"energy":"bad"},"errors":{"energy":"timeout"}}`)

func benchBroker(b *testing.B, cloudAway bool) *Broker {
	cfg := config.Broker{Listen: testpeer.Addr(testpeer.FreePort(b)), Binary: testpeer.LookPath(b, "mosquitto", "mosquitto")}
	if cloudAway {
		cfg.Bridge = &config.Bridge{Address: testpeer.Addr(testpeer.FreePort(b)), Client: tlsconf.Client{TLS: new(false)}} // nobody listens
	}
	br := New(cfg, "gw-bench", b.TempDir(), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-br.Ready():
	case err := <-done:
		b.Fatalf("broker: %v", err)
	case <-time.After(60 * time.Second):
		b.Fatal("broker not ready")
	}
	return br
}

func BenchmarkManaged(b *testing.B) {
	for _, away := range []bool{false, true} {
		name := "no-bridge"
		if away {
			name = "cloud-away"
		}
		b.Run(name+"/Baseline", func(b *testing.B) { benchPaho(b, benchBroker(b, away)) })
		b.Run(name+"/AckOnly", func(b *testing.B) { benchSink(b, benchBroker(b, away), false) })
		b.Run(name+"/Durable", func(b *testing.B) { benchSink(b, benchBroker(b, away), true) })
	}
}

func benchSink(b *testing.B, br *Broker, durable bool) {
	opts := export.Options{URL: br.URL(), ClientID: "osgate-bench", QoS: 1, StoreDir: b.TempDir(),
		Logger: slog.New(slog.DiscardHandler)}
	if durable {
		opts.Broker = br
	}
	s, err := export.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	savesBefore := counterValue(b, metrics.BrokerSaves.WithLabelValues("ok"))
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
	for s.Queued()-s.Unconfirmed() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	saved := time.Now()
	for s.Queued() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(time.Since(saved).Seconds(), "s-to-saved")
	b.ReportMetric(counterValue(b, metrics.BrokerSaves.WithLabelValues("ok"))-savesBefore, "saves")
}

func benchPaho(b *testing.B, br *Broker) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("paho-bench").SetCleanSession(false))
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

// BenchmarkReadDB: reading back a saved state of 100,000 queued 300-byte
// messages (what Persist does after each save while the cloud is away),
// per byte of mosquitto.db.
func BenchmarkReadDB(b *testing.B) {
	db := bigDB(100_000)
	b.SetBytes(int64(len(db)))
	b.ResetTimer()
	for b.Loop() {
		sum, err := readDB(db, "osgate-gw", "local.osgate-gw-test")
		if err != nil || len(sum.held) != 100_000 {
			b.Fatalf("%d held, %v", len(sum.held), err)
		}
	}
}

// bigDB is a version 6 database holding n messages from osgate-gw, all
// queued for the bridge.
func bigDB(n int) []byte {
	db := append([]byte{}, dbMagic...)
	db = binary.BigEndian.AppendUint32(db, 0)
	db = binary.BigEndian.AppendUint32(db, 6)
	chunk := func(typ uint32, body []byte) {
		db = binary.BigEndian.AppendUint32(db, typ)
		db = binary.BigEndian.AppendUint32(db, uint32(len(body)))
		db = append(db, body...)
	}
	id, topic, bridge := "osgate-gw", "telemetry/gw/m", "local.osgate-gw-test"
	for i := range n {
		payload := append(append([]byte{}, benchPayload...), byte(i), byte(i>>8), byte(i>>16))
		ms := binary.NativeEndian.AppendUint64(nil, uint64(i+1))
		ms = binary.NativeEndian.AppendUint64(ms, 0)
		ms = binary.BigEndian.AppendUint32(ms, uint32(len(payload)))
		ms = binary.BigEndian.AppendUint16(ms, 1)
		ms = binary.BigEndian.AppendUint16(ms, uint16(len(id)))
		ms = binary.BigEndian.AppendUint16(ms, 0)
		ms = binary.BigEndian.AppendUint16(ms, uint16(len(topic)))
		ms = binary.BigEndian.AppendUint16(ms, 1883)
		ms = append(ms, 1, 0)
		chunk(chunkMsgStore, append(append(append(ms, id...), topic...), payload...))
	}
	for i := range n {
		cm := binary.NativeEndian.AppendUint64(nil, uint64(i+1))
		cm = binary.BigEndian.AppendUint16(cm, 1)
		cm = binary.BigEndian.AppendUint16(cm, uint16(len(bridge)))
		cm = append(cm, 1, 0, 0, directionOut)
		chunk(chunkClientMsg, append(cm, bridge...))
	}
	return db
}

// BenchmarkCheckDB: the structural check alone on the same database.
func BenchmarkCheckDB(b *testing.B) {
	db := bigDB(100_000)
	b.SetBytes(int64(len(db)))
	b.ResetTimer()
	for b.Loop() {
		if err := checkDB(db); err != nil {
			b.Fatal(err)
		}
	}
}
