package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// BenchmarkIdle runs the osgate binary, built as the image builds it, on
// the embedded default configuration (its own managed Mosquitto, the
// "system" connector polling the gateway every 10 s) with nothing else to
// do, and reports what it costs: CPU as a percentage of one core over the
// run, and its resident memory at the end (RSS), at its peak since it
// started (peak-RSS) and the part that is its own memory rather than pages
// of its binary (anon). Each op is one second; it starts measuring 5 s
// after the gateway answers /healthz. The config file is the default with
// the state directory and the RPC and broker ports moved, so that nothing
// here uses the appliance's ports.
//
//	go test -run '^$' -bench Idle -benchtime 60x ./appliance/cmd/osgate/
//
// OSGATE_BENCH_BINARY names another osgate binary to run instead.
func BenchmarkIdle(b *testing.B) {
	bin := testpeer.OsgateBinary(b, ".")
	cmd, rpc := defaultLikeRun(b, bin)
	pid := testpeer.StartProcess(b, cmd)
	testpeer.WaitFor(b, time.Minute, "osgate answering /metrics", func() bool {
		return testpeer.Scrape("http://" + rpc + "/metrics")["osgate_polls_total"] >= 1
	})
	time.Sleep(5 * time.Second)
	cpu, wall := testpeer.ProcessRounds(b, pid)
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(testpeer.ProcMB(b, pid, "VmRSS"), "RSS-MB")
}

// defaultLikeRun is the command that runs bin as `osgate run` on the
// embedded default configuration with the state directory and the RPC and
// broker ports moved, so that nothing uses the appliance's ports; rpc is
// the RPC service's address. Extra arguments go before -c.
func defaultLikeRun(t testing.TB, bin string, args ...string) (cmd *exec.Cmd, rpc string) {
	t.Helper()
	dir := t.TempDir()
	rpc = testpeer.Addr(testpeer.FreePort(t))
	doc := `{"gateway":{"state_dir":"` + filepath.Join(dir, "state") + `"},"rpc":{"listen":"` + rpc + `"},
		"connectors":[{"name":"system","type":"system","devices":[{"name":"gateway","interval":"10s"}]}]}`
	cfg := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, append(append([]string{"run"}, args...), "-c", cfg, "-ota", filepath.Join(dir, "no-ota.json"))...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OSGATE_BROKER_LISTEN="+testpeer.Addr(testpeer.FreePort(t)))
	return cmd, rpc
}
