package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// The tests here stage the faults that lost data while the cloud was away:
// the gateway runs with its managed Mosquitto bridged to a "cloud"
// Mosquitto whose persistent subscriber counts every sequence number of a
// test-counter device (one reading per poll), while the cloud is stopped;
// the fault strikes; the cloud comes back; every reading the export
// accepted must arrive.

// childConfigEnv makes this test binary run one gateway on the config in
// it (the power cut test kills that process).
const childConfigEnv = "OSGATE_GATEWAY_CHILD_CONFIG"

// countingChild runs a gateway and prints "S device seq" every few
// milliseconds for each test-counter device: a device that reached seq n
// has handed seq n-1 to the export (polls of a device run one after the
// other, each delivered before the next).
func countingChild(doc string) int {
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, err := New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() {
		for {
			time.Sleep(2 * time.Millisecond)
			counters.Range(func(_, v any) bool {
				c := v.(*counter)
				c.mu.Lock()
				for dev, n := range c.seq {
					fmt.Fprintf(os.Stdout, "S %s %d\n", dev, n)
				}
				c.mu.Unlock()
				return true
			})
		}
	}()
	if err := g.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// cloudRig is the cloud side and the gateway's state dir and port.
type cloudRig struct {
	cloud *testpeer.Mosquitto
	sub   *testpeer.Subscriber
	state string
	port  int
	logs  *testpeer.Buffer
}

// newCloudRig starts the cloud with a persistent subscriber to
// telemetry/#, counting "device:seq", and stops the cloud.
func newCloudRig(t *testing.T) *cloudRig {
	r := &cloudRig{state: t.TempDir(), port: testpeer.FreePort(t), logs: &testpeer.Buffer{}}
	r.cloud = testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	r.sub = testpeer.Subscribe(t, r.cloud.URL(), testpeer.SubscriberOptions{ClientID: "cloud-app", Filter: "telemetry/#", Key: deviceSeqKey})
	r.cloud.Stop() // saves the subscriber's session; the cloud is away
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", r.logs.String())
		}
	})
	return r
}

// deviceSeqKey keys a telemetry message by its device and sequence number.
func deviceSeqKey(topic string, b []byte) string {
	var p struct {
		Values map[string]any `json:"values"`
	}
	if json.Unmarshal(b, &p) != nil {
		return "bad:" + string(b)
	}
	seq, _ := p.Values["seq"].(float64)
	return fmt.Sprintf("%s:%d", topic[strings.LastIndex(topic, "/")+1:], int64(seq))
}

// doc is the gateway's config: the managed broker bridged to the cloud and
// one test-counter per device name, polled every 2 ms.
func (r *cloudRig) doc(devices ...string) string {
	var conns []string
	for _, d := range devices {
		conns = append(conns, fmt.Sprintf(`{"name":%q,"type":"test-counter","devices":[{"name":%q,"interval":"2ms","channels":[{"name":"seq"}]}]}`, "c-"+d, d))
	}
	return fmt.Sprintf(`{"gateway":{"id":"gw-dur","state_dir":%q},
		"broker":{"listen":%q,"bridge":{"address":%q,"tls":false}},"rpc":{"listen":"off"},
		"connectors":[%s]}`, r.state, testpeer.Addr(r.port), r.cloud.Addr(), strings.Join(conns, ","))
}

// start runs a gateway in this process; stop stops it and waits.
func (r *cloudRig) start(t *testing.T, devices ...string) (g *Gateway, stop func()) {
	t.Helper()
	cfg, err := config.Parse([]byte(r.doc(devices...)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, err = New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("gateway did not stop within 60 s")
			}
		})
	}
	t.Cleanup(stop)
	testpeer.WaitTCP(t, testpeer.Addr(r.port), 30*time.Second)
	return g, stop
}

// produced is the highest seq a test-counter device of this process
// reached.
func produced(device string) int64 {
	v, ok := counters.Load("c-" + device)
	if !ok {
		return 0
	}
	c := v.(*counter)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq[device]
}

// waitProduced waits until device reached n polls.
func waitProduced(t *testing.T, device string, n int64) {
	t.Helper()
	testpeer.WaitFor(t, 60*time.Second, fmt.Sprintf("%s to reach %d readings", device, n), func() bool { return produced(device) >= n })
}

// expectAll waits until the cloud has every seq 1..upto of each device.
func (r *cloudRig) expectAll(t *testing.T, within time.Duration, upto map[string]int64) {
	t.Helper()
	var keys []string
	total := 0
	for dev, n := range upto {
		for s := int64(1); s <= n; s++ {
			keys = append(keys, fmt.Sprintf("%s:%d", dev, s))
		}
		total += int(n)
	}
	if total < 200 {
		t.Fatalf("only %d readings were produced: the test proves nothing", total)
	}
	if miss := r.sub.WaitKeys(keys, within); len(miss) > 0 {
		t.Fatalf("%d of %d readings accepted by the export never reached the cloud (first %v); %d distinct arrived",
			len(miss), total, miss[:min(10, len(miss))], r.sub.Distinct())
	}
	t.Logf("all %d readings reached the cloud; %d duplicates (QoS 1 allows them)", total, r.sub.Duplicates())
}

// TestMosquittoKilledWhileCloudAway: with the cloud unreachable, the local
// Mosquitto is SIGKILLed three times while readings flow. What it had
// acknowledged since its last save is sent again, so nothing is lost.
func TestMosquittoKilledWhileCloudAway(t *testing.T) {
	r := newCloudRig(t)
	g, _ := r.start(t, "k1")
	for round := range 3 {
		waitProduced(t, "k1", produced("k1")+600)
		pid := g.broker.PID()
		if pid == 0 {
			t.Fatalf("round %d: no mosquitto running", round)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testpeer.WaitFor(t, 60*time.Second, "mosquitto to be restarted", func() bool {
			p := g.broker.PID()
			return p != 0 && p != pid && g.export.Connected()
		})
	}
	waitProduced(t, "k1", produced("k1")+300)
	n := produced("k1") - 1
	r.cloud.Start()
	r.expectAll(t, 60*time.Second, map[string]int64{"k1": n})
}

// countingGateway is a gateway in a child process of its own process group,
// so that the test can kill it and its Mosquitto together.
type countingGateway struct {
	cmd    *exec.Cmd
	stderr testpeer.Buffer
	mu     sync.Mutex
	seq    map[string]int64
	eof    chan struct{}
}

func (r *cloudRig) startChild(t *testing.T, devices ...string) *countingGateway {
	t.Helper()
	c := &countingGateway{seq: map[string]int64{}, eof: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childConfigEnv+"="+r.doc(devices...))
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "S" {
				n, _ := strconv.ParseInt(f[2], 10, 64)
				c.mu.Lock()
				c.seq[f[1]] = max(c.seq[f[1]], n)
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		c.powerCut()
		r.logs.WriteString(c.stderr.String())
	})
	testpeer.WaitTCP(t, testpeer.Addr(r.port), 30*time.Second)
	return c
}

func (c *countingGateway) produced(device string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq[device]
}

// powerCut SIGKILLs the gateway and its Mosquitto at once (the whole
// process group) and waits for the gateway.
func (c *countingGateway) powerCut() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.eof
	_ = c.cmd.Wait()
}

// TestPowerCutWhileCloudAway: with the cloud unreachable, osgate and its
// Mosquitto are killed together (SIGKILL to both: what a power cut does to
// the processes), three times; each time a new gateway starts on the same
// state dir. Every reading the export accepted reaches the cloud.
func TestPowerCutWhileCloudAway(t *testing.T) {
	r := newCloudRig(t)
	upto := map[string]int64{}
	for round := 1; round <= 3; round++ {
		dev := fmt.Sprintf("pc%d", round)
		c := r.startChild(t, dev)
		testpeer.WaitFor(t, 60*time.Second, dev+" to produce 600 readings", func() bool { return c.produced(dev) >= 600 })
		time.Sleep(time.Duration(round) * 300 * time.Millisecond) // land the cut at different points
		c.powerCut()
		upto[dev] = c.produced(dev) - 1
	}
	c := r.startChild(t)
	r.cloud.Start()
	r.expectAll(t, 60*time.Second, upto)
	c.powerCut()
}

// TestDamagedMosquittoDB: the broker's saved state is damaged while it
// holds the readings of a cloud outage: cut to half of its size (Mosquitto
// then refuses to start), cut to 0 bytes (Mosquitto starts empty without a
// word), or cut to half while the gateway runs and then Mosquitto crashes.
// The file is moved aside and logged with its size, the broker starts
// fresh, and the export sends again what the lost state held.
func TestDamagedMosquittoDB(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    func(int64) int64
		running bool
	}{
		{"cut to half", func(n int64) int64 { return n / 2 }, false},
		{"cut to 0 bytes", func(int64) int64 { return 0 }, false},
		{"cut to half while running", func(n int64) int64 { return n / 2 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCloudRig(t)
			dev := "db" + strings.ReplaceAll(tc.name, " ", "")
			g, stop := r.start(t, dev)
			waitProduced(t, dev, 1500)
			db := filepath.Join(r.state, "mosquitto", "mosquitto.db")
			cut := func() int64 {
				st, err := os.Stat(db)
				if err != nil {
					t.Fatalf("no saved broker state: %v", err)
				}
				size := tc.size(st.Size())
				if err := os.Truncate(db, size); err != nil {
					t.Fatal(err)
				}
				t.Logf("mosquitto.db cut from %d to %d bytes", st.Size(), size)
				return size
			}
			var size int64
			var n int64
			if tc.running {
				// Wait for the broker to save what it holds, then damage
				// the file and crash the broker. Everything produced
				// before p0 has been saved (and left the spool) once the
				// spool holds fewer messages than were produced since: a
				// test of that, unlike a fixed count, does not depend on
				// how fast this machine saves.
				p0 := produced(dev)
				testpeer.WaitFor(t, 60*time.Second, "the broker to have saved every reading produced so far",
					func() bool { return int64(g.export.Queued()) < produced(dev)-p0 })
				size = cut()
				n = produced(dev) - 1
				pid := g.broker.PID()
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				testpeer.WaitFor(t, 60*time.Second, "mosquitto to be restarted", func() bool {
					p := g.broker.PID()
					return p != 0 && p != pid
				})
			} else {
				stop()
				n = produced(dev) - 1
				size = cut()
				r.start(t, dev+"-after")
			}
			r.cloud.Start()
			r.expectAll(t, 60*time.Second, map[string]int64{dev: n})
			moved, _ := filepath.Glob(db + ".corrupt-*")
			if len(moved) != 1 {
				t.Fatalf("damaged database moved aside: %v, want one file", moved)
			}
			if st, _ := os.Stat(moved[0]); st.Size() != size {
				t.Fatalf("%s is %d bytes, want the damaged %d", moved[0], st.Size(), size)
			}
			want := fmt.Sprintf("size=%d", size)
			if !strings.Contains(r.logs.String(), "mosquitto.db was damaged") || !strings.Contains(r.logs.String(), want) {
				t.Fatalf("the log does not report the damaged database with its %s", want)
			}
		})
	}
}

// TestBrokerThatCannotStartKeepsGatewayRunning: the managed broker cannot
// start (its directory in the state dir is a file, as an operator's
// mistake or a failing disk might leave it). The gateway keeps running,
// reports why in its health, and keeps the readings in the spool; once
// the directory can be made, the broker starts and every reading reaches
// the cloud.
func TestBrokerThatCannotStartKeepsGatewayRunning(t *testing.T) {
	r := newCloudRig(t)
	blocker := filepath.Join(r.state, "mosquitto")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(r.doc("nb")))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, slog.New(slog.NewTextHandler(r.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	testpeer.WaitFor(t, 30*time.Second, "health to report the broker", func() bool {
		h := g.Health().Report()
		return h.Broker != "" && h.Status != health.OK && g.export != nil && g.export.Queued() > 100
	})
	select {
	case err := <-done:
		t.Fatalf("the gateway stopped because its broker cannot start: %v", err)
	case <-time.After(3 * time.Second):
	}
	h := g.Health().Report()
	if !strings.Contains(h.Broker, "not a directory") || !strings.Contains(strings.Join(h.Reasons, "; "), "managed broker not running") {
		t.Fatalf("health does not say why the broker is down: %+v", h)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, 60*time.Second, "the broker to start", func() bool {
		return g.broker.PID() != 0 && g.Health().Report().Broker == ""
	})
	waitProduced(t, "nb", produced("nb")+100)
	n := produced("nb") - 1
	r.cloud.Start()
	r.expectAll(t, 60*time.Second, map[string]int64{"nb": n})
}
