package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/fleet"
	"github.com/osgate/osgate/internal/testpeer"
)

// fleetSizesEnv selects BenchmarkFleetScale's fleet sizes, e.g.
// "20,50,100,200" (default 20: what a plain `make bench` runs).
const fleetSizesEnv = "OSGATE_FLEET_BENCH_N"

// fleetStatusEnv sets the simulated gateways' status_interval (default
// 10s).
const fleetStatusEnv = "OSGATE_FLEET_BENCH_STATUS"

// The simulated gateways' rates: faster than the defaults (status
// document every 5 minutes, configuration pull every 5 minutes) so that a
// measuring window of half a minute holds several of each; the figures
// are per document and per pull, and docs/fleet.md scales them to the
// defaults.
const (
	benchStatusInterval = 10 * time.Second
	benchPullInterval   = 10 * time.Second
	benchWindow         = 30 * time.Second
)

func statusInterval(b *testing.B) time.Duration {
	v := os.Getenv(fleetStatusEnv)
	if v == "" {
		return benchStatusInterval
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		b.Fatalf("%s=%q: want a duration of at least 1s", fleetStatusEnv, v)
	}
	return d
}

// BenchmarkFleetScale runs a fleet of N gateways on this machine, each
// `osgate run` in a process of its own (this test binary running osgate's
// main) with its own state dir and its own managed Mosquitto, bridged over
// TLS to one cloud Mosquitto, pulling its signed configuration from nginx
// every 10 s and publishing its status document every 10 s (or every
// OSGATE_FLEET_BENCH_STATUS). Per N:
//
//   - steady: half a minute (or one status_interval, if longer) of the
//     running fleet (ns/op is the window):
//     the CPU (% of one core) and resident memory of each gateway's
//     osgate and Mosquitto, of the cloud broker and of nginx; the
//     messages the cloud broker received per second and the status
//     document's size (doc-B), nginx's requests per second; and how
//     long the fleet took from the first process's start until `fleet`
//     saw every gateway online, started 25 at a time (s-to-online, on
//     this machine a measure of starting 2 N processes);
//   - ls: what `osgate fleet ls` does before it prints: connect to the
//     cloud broker, subscribe, and have every gateway's retained document
//     and bridge state (without the half second of quiet the command
//     waits for afterwards); view-B/gw is the live heap the view holds;
//   - rpc: `fleet rpc -gateways all gateway.status` on a connected view:
//     a signed request to each gateway and every answer back through its
//     bridge; slowest-ms is the last answer's time, averaged over ops.
//
// No fake stands in: the gateways, their brokers and bridges, the cloud
// broker and nginx are the real programs. The gateways run no connector:
// what is measured is the fleet's own traffic (status, configuration,
// RPC), not readings.
func BenchmarkFleetScale(b *testing.B) {
	sizes := []int{20}
	if v := os.Getenv(fleetSizesEnv); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("%s=%q: want fleet sizes such as 20,50,100,200", fleetSizesEnv, v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchFleet(b, n) })
	}
}

// simFleet is a running fleet of gateway processes with its cloud side.
type simFleet struct {
	cloud *apptest.Cloud
	nginx *testpeer.Nginx
	// monitor receives every message the cloud broker gets from the
	// gateways.
	monitor *testpeer.Subscriber
	gws     []*apptest.Process
	ids     []string
	files   []string // their bootstrap files
}

func startSimFleet(b *testing.B, n int) *simFleet {
	f := &simFleet{}
	f.cloud = apptest.StartCloud(b, apptest.CloudOptions{
		Users: map[string]string{"monitor": "mon-secret"},
		ACL:   "user monitor\ntopic read #\n",
	})
	// Everything the gateways send to the cloud.
	f.monitor = testpeer.Subscribe(b, f.cloud.Broker.URL(), testpeer.SubscriberOptions{ClientID: "bench-monitor",
		Username: "monitor", Password: "mon-secret", CAFile: f.cloud.Broker.CAFile()})

	// The configuration server: each gateway's signed document.
	dir := b.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(www, "gateways"), 0o755); err != nil {
		b.Fatal(err)
	}
	f.nginx = testpeer.StartNginx(b, testpeer.NginxOptions{Root: www, WorkerConnections: n + 64, LogFormat: "$request_method $uri $status"})
	keyFile := filepath.Join(dir, "config.key")
	code, out, errOut := runCLI("config", "keygen", keyFile)
	pub, ok := strings.CutPrefix(strings.TrimSpace(out), "public_key: ")
	if code != 0 || !ok {
		b.Fatalf("config keygen: exit %d: %s%s", code, out, errOut)
	}
	var docs, files []string
	for i := range n {
		id := fmt.Sprintf("gw-%04d", i)
		gdir := b.TempDir()
		// The document the gateway pulls is its bootstrap file itself: a
		// pulled document may repeat what only the local file sets.
		doc := fmt.Sprintf(`{"gateway": {"id": %q, "state_dir": %q, "status_interval": %q,
			"labels": {"site": "site-%02d", "customer": "acme", "hw": "pi4"}},
		"broker": {"listen": %q, "bridge": %s},
		"rpc": {"listen": "off", "operator_keys": %s},
		"remote": {"url": "http://%s/gateways/{gateway}.json", "interval": %q, "public_key": %q, "tls": false},
		"connectors": []}`, id, filepath.Join(gdir, "state"), statusInterval(b), i%50,
			testpeer.Addr(listenPort(b)), f.cloud.Bridge(""), f.cloud.OperatorKeys(),
			f.nginx.Addr(), benchPullInterval, pub)
		local, served := filepath.Join(gdir, "osgate.json"), filepath.Join(www, "gateways", id+".json")
		for _, p := range []string{local, served} {
			if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		f.ids, docs, files = append(f.ids, id), append(docs, served), append(files, local)
	}
	if code, out, errOut := runCLI(append([]string{"config", "sign", keyFile}, docs...)...); code != 0 {
		b.Fatalf("config sign: exit %d: %s%s", code, out, errOut)
	}
	f.files = files
	b.Cleanup(func() {
		f.stop(b)
		if b.Failed() {
			// The end the test log shows is rarely where it went wrong.
			p := filepath.Join(os.TempDir(), fmt.Sprintf("fleet-bench-cloud-N%d.log", n))
			if err := os.WriteFile(p, []byte(f.cloud.Broker.Log()), 0o644); err == nil {
				b.Logf("the cloud broker's whole log: %s", p)
			}
		}
	})
	return f
}

// startBatch is how many gateways start at once: starting hundreds of
// processes together on two cores starves the cloud broker of CPU for
// longer than the bridges wait for its answer.
const startBatch = 25

// start starts the gateway processes, startBatch at a time, each batch
// once the view w has the ones before online. It returns how long it took
// until every gateway was online.
func (f *simFleet) start(b *testing.B, w *fleet.Watch) time.Duration {
	began := time.Now()
	for i, id := range f.ids {
		file, noOTA := f.files[i], filepath.Join(filepath.Dir(f.files[i]), "ota.json")
		f.gws = append(f.gws, apptest.StartProcess(b, id, func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "run", "-c", file, "-ota", noOTA)
			cmd.Env = append(os.Environ(), mainEnv+"=1", "OSGATE_CONFIG=")
			return cmd
		}))
		if len(f.gws)%startBatch == 0 || len(f.gws) == len(f.ids) {
			f.waitOnline(b, w, len(f.gws), 3*time.Minute)
		}
	}
	return time.Since(began)
}

// nextPort is the last port listenPort tried.
var nextPort = 20000 + rand.IntN(8000)

// listenPort is a free port below Linux's ephemeral range (32768 and up):
// one that no outgoing connection (hundreds here: bridges, clients) takes
// between this test's check and the gateway's listening.
func listenPort(b *testing.B) int {
	for range 4000 {
		nextPort++
		if nextPort >= 32768 {
			nextPort = 20000
		}
		l, err := net.Listen("tcp", testpeer.Addr(nextPort))
		if err == nil {
			l.Close()
			return nextPort
		}
	}
	b.Fatal("no free port between 20000 and 32767")
	return 0
}

// stop ends every gateway at once (SIGTERM to all, then the wait), and
// fails the benchmark when one of them had ended and been restarted.
func (f *simFleet) stop(b *testing.B) {
	for _, g := range f.gws {
		g.Terminate()
	}
	for _, g := range f.gws {
		g.Stop(b)
		if n := g.Starts(); n != 1 {
			b.Errorf("gateway %s started %d times: it ended while the fleet ran\n%s", g.ID, n, apptest.Tail(g.Log(), 3000))
		}
	}
}

// all is how many gateways the view has online with their bridge up:
// what `fleet ls` counts as online. (Health is not asked for: a gateway's
// first document may say the export is not yet connected until the next
// heartbeat.)
func (f *simFleet) all(w *fleet.Watch) int {
	n := 0
	for _, g := range w.Gateways() {
		if g.Doc.State == "online" && g.Bridge == "1" {
			n++
		}
	}
	return n
}

// waitAll waits until the view has every gateway online.
func (f *simFleet) waitAll(b *testing.B, w *fleet.Watch, within time.Duration) {
	f.waitOnline(b, w, len(f.ids), within)
}

// waitOnline waits until the view has the first n gateways online.
func (f *simFleet) waitOnline(b *testing.B, w *fleet.Watch, n int, within time.Duration) {
	deadline := time.After(within)
	for {
		changed := w.Changed()
		if f.all(w) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			var missing []string
			for _, id := range f.ids[:n] {
				if g, ok := w.Get(id); !ok || g.Doc.State != "online" || g.Bridge != "1" {
					missing = append(missing, fmt.Sprintf("%s (%q, bridge %q)", id, g.Doc.State, g.Bridge))
				}
			}
			b.Fatalf("%d of %d gateways online after %s; not: %s", f.all(w), n, within, apptest.Tail(strings.Join(missing, ", "), 2000))
		}
	}
}

// procUsage is the processes' CPU time and memory at one moment.
type procUsage struct {
	at                time.Time
	osgate, mosquitto []testpeer.ProcStat // by gateway
	cloud, nginx      testpeer.ProcStat
	requests          int // nginx's access log lines
}

func (f *simFleet) usage(b *testing.B) procUsage {
	u := procUsage{at: time.Now()}
	children := testpeer.Children()
	for _, g := range f.gws {
		st, err := testpeer.ReadProc(g.Pid())
		if err != nil {
			b.Fatalf("gateway %s: %v", g.ID, err)
		}
		u.osgate = append(u.osgate, st)
		// The gateway's managed broker is its only child process.
		kids := children[g.Pid()]
		if len(kids) != 1 {
			b.Fatalf("gateway %s (pid %d) has %d child processes, want its Mosquitto alone", g.ID, g.Pid(), len(kids))
		}
		if st, err = testpeer.ReadProc(kids[0]); err != nil {
			b.Fatalf("gateway %s's Mosquitto: %v", g.ID, err)
		}
		u.mosquitto = append(u.mosquitto, st)
	}
	var err error
	if u.cloud, err = testpeer.ReadProc(f.cloud.Broker.Pid()); err != nil {
		b.Fatalf("cloud broker: %v", err)
	}
	if u.nginx, err = testpeer.ReadProc(f.nginx.Pid()); err != nil {
		b.Fatalf("nginx: %v", err)
	}
	u.requests = len(f.nginx.AccessLog("/gateways/"))
	return u
}

func cpuShare(d time.Duration, window time.Duration) float64 {
	return 100 * d.Seconds() / window.Seconds()
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func benchFleet(b *testing.B, n int) {
	f := startSimFleet(b, n)
	s, err := fleet.LoadSettings(f.cloud.FleetFile)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c, err := fleet.Dial(ctx, s)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w, err := c.Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	toOnline := f.start(b, w)
	b.Logf("N=%d: every gateway online %s after the first process started", n, toOnline.Round(100*time.Millisecond))
	// The cloud RPC responders subscribe through the bridges in their
	// own time: ask until all answer.
	testpeer.WaitFor(b, 3*time.Minute, "every gateway to answer gateway.status", func() bool {
		answers, err := c.Run(ctx, f.ids, fleet.Call{Method: "gateway.status", Timeout: 10 * time.Second})
		return err == nil && !slices.ContainsFunc(answers, func(a fleet.Answer) bool { return a.Outcome != "ok" })
	})

	b.Run("steady", func(b *testing.B) {
		var u0, u1 procUsage
		for b.Loop() {
			u0 = f.usage(b)
			time.Sleep(max(benchWindow, statusInterval(b)))
			u1 = f.usage(b)
		}
		window := u1.at.Sub(u0.at)
		var osCPU, mqCPU time.Duration
		var osRSS, mqRSS, osMax int64
		for i := range f.gws {
			osCPU += u1.osgate[i].CPU - u0.osgate[i].CPU
			mqCPU += u1.mosquitto[i].CPU - u0.mosquitto[i].CPU
			osRSS += u1.osgate[i].RSS
			mqRSS += u1.mosquitto[i].RSS
			osMax = max(osMax, u1.osgate[i].RSS)
		}
		b.ReportMetric(cpuShare(osCPU, window)/float64(n), "osgate-%cpu/gw")
		b.ReportMetric(mib(osRSS)/float64(n), "osgate-MiB/gw")
		b.ReportMetric(mib(osMax), "osgate-max-MiB")
		b.ReportMetric(cpuShare(mqCPU, window)/float64(n), "mosq-%cpu/gw")
		b.ReportMetric(mib(mqRSS)/float64(n), "mosq-MiB/gw")
		b.ReportMetric(cpuShare(u1.cloud.CPU-u0.cloud.CPU, window), "cloud-%cpu")
		b.ReportMetric(mib(u1.cloud.RSS), "cloud-MiB")
		msgs, docs, docBytes := 0, 0, 0
		for _, m := range f.monitor.Messages() {
			if !m.Retained && !m.At.Before(u0.at) && m.At.Before(u1.at) {
				msgs++
			}
			if strings.Count(m.Topic, "/") == 1 && strings.HasPrefix(m.Topic, "status/") {
				docs, docBytes = docs+1, docBytes+len(m.Payload)
			}
		}
		b.ReportMetric(float64(msgs)/window.Seconds(), "cloud-msg/s")
		b.ReportMetric(float64(docBytes)/float64(max(docs, 1)), "doc-B")
		b.ReportMetric(cpuShare(u1.nginx.CPU-u0.nginx.CPU, window), "nginx-%cpu")
		b.ReportMetric(mib(u1.nginx.RSS), "nginx-MiB")
		b.ReportMetric(float64(u1.requests-u0.requests)/window.Seconds(), "nginx-req/s")
		b.ReportMetric(toOnline.Seconds(), "s-to-online")
	})

	b.Run("ls", func(b *testing.B) {
		heap0 := testpeer.Heap()
		view := func() *fleet.Conn {
			c, err := fleet.Dial(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			w, err := c.Watch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			f.waitAll(b, w, time.Minute)
			return c
		}
		held := view()
		perGateway := float64(testpeer.Heap()-heap0) / float64(n)
		held.Close()
		for b.Loop() {
			view().Close()
		}
		b.ReportMetric(perGateway, "view-B/gw")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/gw")
	})

	b.Run("rpc", func(b *testing.B) {
		var slowest time.Duration
		for b.Loop() {
			answers, err := c.Run(ctx, f.ids, fleet.Call{Method: "gateway.status", Timeout: 30 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			var last time.Duration
			for _, a := range answers {
				if a.Outcome != "ok" {
					b.Fatalf("gateway %s: %s %+v", a.Gateway, a.Outcome, a.Error)
				}
				last = max(last, a.Took)
			}
			slowest += last
		}
		b.ReportMetric(float64(slowest.Milliseconds())/float64(b.N), "slowest-ms")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/gw")
	})
}
