package modbus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// The whole path at 10 Hz as the appliance runs it: the osgate binary (its
// own process, with its own memory settings) polls 1,000 holding registers
// ten times a second from the pymodbus TCP peer and exports them into a
// local Mosquitto, against a bare grid-x loop binary (testdata/gridxloop)
// reading the same registers at the same rate. Each op is one second. Both
// report the process's CPU per 1,000 readings, its peak RSS (VmHWM, reset
// once it is running; for the gateway, once it has given back its start's
// pages) and the peak of its own memory (RssAnon, without the
// pages of its binary). The gateway also reports its polls and the failed,
// missed and late ones from /metrics. Ten minutes of it:
//
//	go test -run '^$' -bench 'Process(Gateway|Gridx)10Hz' -benchtime 10x ./drivers/modbus/
//	go test -run '^$' -bench 'ProcessGateway10Hz' -benchtime 600x -timeout 30m ./drivers/modbus/
//
// OSGATE_BENCH_BINARY names an osgate binary to run instead of the one
// built from this tree (another commit's, to compare in the same run).

func BenchmarkProcessGateway10Hz(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{})
	bin := testpeer.OsgateBinary(b, "../../appliance/cmd/osgate")
	dir := b.TempDir()
	rpc := testpeer.Addr(testpeer.FreePort(b))
	var chans []string
	for a := range 1000 {
		chans = append(chans, fmt.Sprintf(`{"name":"r%d","register":"holding","address":%d}`, a, a))
	}
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-bench","state_dir":%q},"broker":{"managed":false,"url":%q},"rpc":{"listen":%q},
		"connectors":[{"name":"mb10hz","type":"modbus","settings":{"transport":"tcp","address":%q,"timeout":"2s"},
		"devices":[{"name":"plc","unit_id":2,"interval":"100ms","timeout":"100ms","channels":[%s]}]}]}`,
		filepath.Join(dir, "state"), br.URL(), rpc, p.tcp, strings.Join(chans, ","))
	cfg := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		b.Fatal(err)
	}
	pid := testpeer.StartProcess(b, exec.Command(bin, "run", "-c", cfg, "-ota", filepath.Join(dir, "no-ota.json")))
	metrics := "http://" + rpc + "/metrics"
	started := time.Now()
	testpeer.WaitFor(b, time.Minute, "osgate exporting readings", func() bool {
		return testpeer.Scrape(metrics)["osgate_readings_out_total"] >= 1000
	})
	// The peak is the running gateway's: it gives back the pages of its
	// binary that only its start used 5 s after it starts
	// (appliance/cmd/osgate/exepages.go).
	time.Sleep(time.Until(started.Add(7 * time.Second)))
	testpeer.ResetPeakRSS(b, pid)
	m0 := testpeer.Scrape(metrics)
	cpu, _ := testpeer.ProcessRounds(b, pid)
	m1 := testpeer.Scrape(metrics)
	d := func(name string) float64 { return m1[name] - m0[name] }
	readings := d("osgate_readings_out_total")
	b.ReportMetric(cpu.Seconds()*1000/readings, "cpu-s/1000readings")
	b.ReportMetric(readings/float64(b.N), "readings/s")
	b.ReportMetric(d("osgate_polls_total"), "polls")
	b.ReportMetric(d("osgate_poll_errors_total"), "failed-polls")
	b.ReportMetric(d("osgate_polls_missed_total"), "missed-polls")
	b.ReportMetric(d("osgate_polls_late_total"), "late-polls")
}

func BenchmarkProcessGridx10Hz(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	bin := testpeer.BuildMain(b, "./testdata/gridxloop")
	pid := testpeer.StartProcess(b, exec.Command(bin, "-addr", p.tcp, "-unit", "2", "-n", "1000", "-every", "100ms"))
	time.Sleep(time.Second) // connected and polling; it exits at a failed read
	testpeer.ResetPeakRSS(b, pid)
	cpu, wall := testpeer.ProcessRounds(b, pid)
	readings := 1000 * 10 * wall.Seconds()
	b.ReportMetric(cpu.Seconds()*1000/readings, "cpu-s/1000readings")
}
