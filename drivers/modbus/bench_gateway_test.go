package modbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	gridx "github.com/grid-x/modbus"
	"github.com/osgate/osgate/internal/prom"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// The whole path at 10 Hz, against its baseline: 1,000 holding
// registers polled ten times a second from the pymodbus TCP peer, through
// the gateway (scheduler, driver, transforms, export) into a local
// Mosquitto, against a bare grid-x loop reading the same registers at the
// same rate. Each op is one second of running. Compare cpu-s/1000readings
// and peak-RSS-MB (the peak is reset before each benchmark). The gateway
// also reports its polls in the run, those that failed (timed out), and
// those it missed or started late (osgate_polls_missed_total,
// osgate_polls_late_total); ten minutes of it:
//
//	go test -run '^$' -bench 'Gateway10Hz|Gridx10Hz' -benchtime 5x ./drivers/modbus/
//	go test -run '^$' -bench 'Gateway10Hz' -benchtime 600x -timeout 30m ./drivers/modbus/

func BenchmarkGateway10Hz(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{})
	var chans []string
	for a := range 1000 {
		chans = append(chans, fmt.Sprintf(`{"name":"r%d","register":"holding","address":%d}`, a, a))
	}
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-bench","state_dir":%q},"broker":{"managed":false,"url":%q},"rpc":{"listen":"off"},
		"connectors":[{"name":"mb10hz","type":"modbus","settings":{"transport":"tcp","address":%q,"timeout":"2s"},
		"devices":[{"name":"plc","unit_id":2,"interval":"100ms","timeout":"100ms","channels":[%s]}]}]}`,
		b.TempDir(), br.URL(), p.tcp, strings.Join(chans, ","))
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	g, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		b.Fatal(err)
	}
	out := metrics.ReadingsOut.WithLabelValues("mb10hz")
	polls, missed, late := metrics.Polls.WithLabelValues("mb10hz"), metrics.PollsMissed.WithLabelValues("mb10hz"), metrics.PollsLate.WithLabelValues("mb10hz")
	failed := metrics.PollErrors.WithLabelValues("mb10hz")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	resetPeakRSS()
	go func() { done <- g.Run(ctx) }()
	for counterValue(out) < 1000 { // connected and exporting
		time.Sleep(10 * time.Millisecond)
	}
	before, cpu := counterValue(out), cpuTime()
	polls0, missed0, late0 := counterValue(polls), counterValue(missed), counterValue(late)
	failed0 := counterValue(failed)
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(time.Second)
	}
	b.StopTimer()
	readings := counterValue(out) - before
	b.ReportMetric((cpuTime()-cpu).Seconds()*1000/readings, "cpu-s/1000readings")
	b.ReportMetric(readings/float64(b.N), "readings/s")
	b.ReportMetric(counterValue(polls)-polls0, "polls")
	b.ReportMetric(counterValue(missed)-missed0, "missed-polls")
	b.ReportMetric(counterValue(late)-late0, "late-polls")
	b.ReportMetric(counterValue(failed)-failed0, "failed-polls")
	b.ReportMetric(vmHWM(), "peak-RSS-MB")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkGridx10Hz(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	h := gridx.NewTCPClientHandler(p.tcp)
	h.Timeout = 2 * time.Second
	h.SetSlave(2)
	defer h.Close()
	cl := gridx.NewClient(h)
	ctx := context.Background()
	vals := make([]int64, 1000)
	resetPeakRSS()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	polls, cpu := 0, cpuTime()
	start := time.Now()
	b.ResetTimer()
	for b.Loop() {
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			<-tick.C
			for s := 0; s < 1000; s += 125 {
				regs, err := cl.ReadHoldingRegisters(ctx, uint16(s), 125)
				if err != nil {
					b.Fatalf("read %d: %v", s, err)
				}
				for i := range 125 {
					vals[s+i] = int64(binary.BigEndian.Uint16(regs[2*i:]))
				}
			}
			polls++
		}
	}
	b.StopTimer()
	readings := float64(polls * 1000)
	b.ReportMetric((cpuTime()-cpu).Seconds()*1000/readings, "cpu-s/1000readings")
	b.ReportMetric(readings/time.Since(start).Seconds(), "readings/s")
	b.ReportMetric(vmHWM(), "peak-RSS-MB")
}

// resetPeakRSS resets the kernel's peak-RSS mark of this process (VmHWM),
// so each benchmark reports its own peak.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func counterValue(c *prom.Counter) float64 { return c.Value() }

// vmHWM is the peak resident set size since resetPeakRSS, in MB.
func vmHWM() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
