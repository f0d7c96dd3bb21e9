package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// benchChannels is one device message's worth of channels.
const benchChannels = 10

// benchNames are the channels' names: fixed, as a driver's configured
// channels are (building them per poll would count in the pipeline's CPU).
var benchNames = func() (names [benchChannels]string) {
	for k := range names {
		names[k] = fmt.Sprintf("ch%d", k)
	}
	return names
}()

// benchBatch is a poll's readings: numbers that change each time, so the
// deadband and scale do real work.
func benchBatch(rs []core.Reading, i int) []core.Reading {
	rs = rs[:0]
	now := time.Now()
	for k := 0; k < benchChannels; k++ {
		rs = append(rs, core.Reading{Device: "meter-1", Channel: benchNames[k], Value: int64(i*benchChannels + k), Unit: "V", Time: now})
	}
	return rs
}

// BenchmarkPipeline: readings of one device per op (one message of 10
// channels) through the channel transforms (scale, offset, range, a
// deadband that lets every change through), encoding and the export sink
// into a real Mosquitto at QoS 1, from parallel devices as the scheduler
// runs them; timed until the broker has acknowledged everything. Compare
// msgs/s and cpu-µs/msg (this process's CPU time per message, the
// broker's not in it) with BenchmarkPipelineBaseline from the same run.
// The publishers hand messages over faster than the broker takes them,
// so a run has two parts, reported apart: publishing-msgs/s is what the
// broker acknowledged while they published (with the spool at its queue
// limit, the gateway's rate under sustained load), backlog-msgs what
// waited in the spool when they stopped and drain-msgs/s the rate it
// emptied at. In a short run the drain is most of the time.
func BenchmarkPipeline(b *testing.B) {
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	var chans []string
	for k := 0; k < benchChannels; k++ {
		chans = append(chans, fmt.Sprintf(`{"name":"ch%d","scale":0.1,"offset":1,"min":-1e12,"max":1e12,"deadband":{"absolute":0.01}}`, k))
	}
	cfg, err := config.Parse([]byte(`{"gateway":{"id":"gw-bench","state_dir":"` + b.TempDir() + `"},"broker":{"managed":false,"url":"` + br.URL() + `"},"rpc":{"listen":"off"},
		"connectors":[{"name":"c1","type":"test-counter","devices":[{"name":"meter-1","channels":[` + strings.Join(chans, ",") + `]}]}]}`))
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	sink, err := export.New(g.exportOptions(cfg, br.URL()))
	if err != nil {
		b.Fatal(err)
	}
	g.sink = sink
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !sink.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	c := g.conns["c1"]
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rs := make([]core.Reading, 0, benchChannels)
		i := 0
		for pb.Next() {
			i++
			// The deadband state is per channel: parallel devices share
			// it here, which only makes it let more through.
			if err := c.deliver(ctx, "meter-1", benchBatch(rs, i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	// The publishing ends here; the backlog's drain follows.
	published, backlog := b.Elapsed(), sink.Queued()
	for sink.Queued() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(b.N*benchChannels)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(b.N-backlog)/published.Seconds(), "publishing-msgs/s")
	b.ReportMetric(float64(backlog), "backlog-msgs")
	if drained := b.Elapsed() - published; backlog > 0 && drained > 0 {
		b.ReportMetric(float64(backlog)/drained.Seconds(), "drain-msgs/s")
	}
}

// BenchmarkPipelineBaseline: the broker's ceiling — a plain paho publisher
// sending the same messages (one per op, the size of what the pipeline
// encodes) at QoS 1 into the same kind of Mosquitto, from parallel
// goroutines, timed until every token completed.
func BenchmarkPipelineBaseline(b *testing.B) {
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{Extra: quietBroker})
	payload := export.Encode(nil, benchBatch(nil, 12345))
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("paho-baseline").SetCleanSession(false))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var toks []mqtt.Token
		for pb.Next() {
			toks = append(toks, c.Publish("telemetry/gw-bench/meter-1", 1, false, payload))
		}
		for _, t := range toks {
			if t.Wait(); t.Error() != nil {
				b.Error(t.Error())
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(b.N*benchChannels)/b.Elapsed().Seconds(), "readings/s")
}

// cpuTime is this process's user and system CPU time so far (the broker's
// is not in it).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quietBroker turns the test broker's per-message debug log off (it keeps
// errors and warnings): the test process copies everything the broker
// logs, which would count in the benchmark's CPU and load the machine.
const quietBroker = "log_type none\nlog_type error\nlog_type warning"
