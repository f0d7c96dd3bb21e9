package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// What the cloud learns when a gateway dies or its link is cut, measured
// on a real cloud Mosquitto: the tests below state the times in their
// log (go test -v) and fail past the bounds docs/status.md gives.

// childEnv makes this test binary run a gateway on the config file it
// names, until SIGTERM or SIGKILL: the gateway process the tests kill.
const childEnv = "OSGATE_GATEWAY_CHILD"

// TestMain runs this test binary as one of the gateway processes that
// tests start and kill (childEnv, childConfigEnv), or runs the tests.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childGateway(path))
	}
	if doc := os.Getenv(childConfigEnv); doc != "" {
		os.Exit(countingChild(doc))
	}
	os.Exit(m.Run())
}

func childGateway(path string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("config", "err", err)
		return 2
	}
	g, err := New(cfg, log)
	if err != nil {
		log.Error("new", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := g.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// gatewayChild is a gateway process started from this test binary.
type gatewayChild struct {
	cmd    *exec.Cmd
	stderr *testpeer.Buffer
	exited chan struct{}
}

func startGatewayChild(t *testing.T, cfgPath string) *gatewayChild {
	t.Helper()
	c := &gatewayChild{stderr: &testpeer.Buffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+cfgPath)
	c.cmd.Stderr = c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start gateway process: %v", err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }() // owned: ends when the child exits
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
		if t.Failed() {
			t.Logf("gateway process output:\n%s", c.stderr.String())
		}
	})
	return c
}

// kill SIGKILLs the gateway process and waits for it to be gone.
func (c *gatewayChild) kill(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("gateway process still there 30 s after SIGKILL")
	}
	return at
}

// terminate stops the gateway process cleanly (SIGTERM) and waits for it.
func (c *gatewayChild) terminate(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("gateway process still there 60 s after SIGTERM")
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("gateway exited with %d after SIGTERM", code)
	}
	return at
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	if _, err := config.Parse([]byte(doc)); err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	p := filepath.Join(t.TempDir(), "osgate.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPortFree waits until nothing listens on addr (a killed gateway's
// Mosquitto is gone).
func waitPortFree(t *testing.T, addr string) {
	t.Helper()
	testpeer.WaitFor(t, 30*time.Second, addr+" free", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

// payloadIs matches a message on topic with exactly this payload that
// arrived after t0.
func payloadIs(topic, payload string, t0 time.Time) func(testpeer.Message) bool {
	return func(m testpeer.Message) bool {
		return m.Topic == topic && string(m.Payload) == payload && !m.At.Before(t0)
	}
}

// stateAfter matches a gateway or device document in state that arrived
// after t0.
func stateAfter(state string, t0 time.Time) func(testpeer.Message, statusDoc) bool {
	return func(m testpeer.Message, d statusDoc) bool { return d.State == state && !m.At.Before(t0) }
}

// TestGatewayKilledShowsOfflineOnTheCloud kills the gateway process with
// SIGKILL, as a crash, an OOM kill or a power cut of the process would.
//
// On the appliance osgate runs Mosquitto as its child, which gets SIGTERM
// when osgate dies; Mosquitto then closes the bridge's connection without
// a DISCONNECT, so the cloud broker publishes the bridge's will at once:
// status/{gateway}/bridge "0". The export client's own will ("offline" on
// status/{gateway}) is published by the dying local broker but not
// forwarded before it exits; it reaches the cloud when the gateway starts
// again, just before the new "online".
func TestGatewayKilledShowsOfflineOnTheCloud(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	broker := testpeer.Addr(testpeer.FreePort(t))
	cfg := writeConfig(t, fmt.Sprintf(`{"gateway":{"id":"gw-kill","state_dir":%q},
		"broker":{"listen":%q,"bridge":{"address":%q,"keepalive":"5s","tls":false}},"rpc":{"listen":"off"},
		"connectors":[{"name":"k","type":"test-switch","devices":[{"name":"k-1","interval":"200ms"}]}]}`,
		t.TempDir(), broker, cloud.Addr()))
	sub := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "t-cloud-kill", Filter: "status/gw-kill/#"})

	start := time.Now()
	gw := startGatewayChild(t, cfg)
	_, current := waitStatus(t, sub, 60*time.Second, "status/gw-kill", stateAfter("online", start))
	boots := map[string]bool{current.Boot: true}
	waitStatus(t, sub, 60*time.Second, "status/gw-kill/devices/k-1", stateAfter("online", start))
	if _, ok := sub.WaitMessage(60*time.Second, payloadIs("status/gw-kill/bridge", "1", start)); !ok {
		t.Fatal("the bridge never said 1 on the cloud")
	}

	for round := 1; round <= 3; round++ {
		killed := gw.kill(t)
		m, ok := sub.WaitMessage(10*time.Second, payloadIs("status/gw-kill/bridge", "0", killed))
		if !ok {
			t.Fatalf("round %d: no bridge \"0\" on the cloud within 10 s of SIGKILL", round)
		}
		took := m.At.Sub(killed)
		t.Logf("round %d: gateway SIGKILLed; status/gw-kill/bridge \"0\" on the cloud after %s", round, took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("round %d: offline on the cloud after %s, want within 3 s", round, took)
		}
		waitPortFree(t, broker)
		restarted := time.Now()
		gw = startGatewayChild(t, cfg)
		// The new process's "online" (a boot id not seen before):
		// documents an earlier process had spooled and not delivered
		// may come first.
		_, current = waitStatus(t, sub, 60*time.Second, "status/gw-kill", func(m testpeer.Message, d statusDoc) bool {
			return d.State == "online" && !boots[d.Boot] && !m.At.Before(restarted)
		})
		boots[current.Boot] = true
		if _, ok := sub.WaitMessage(60*time.Second, payloadIs("status/gw-kill/bridge", "1", restarted)); !ok {
			t.Fatalf("round %d: the bridge did not say 1 again", round)
		}
	}
	// What a newcomer on the cloud sees now: online, bridge up.
	late := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "t-cloud-late", Filter: "status/gw-kill/#"})
	waitStatus(t, late, 30*time.Second, "status/gw-kill", func(m testpeer.Message, d statusDoc) bool {
		return m.Retained && d.State == "online" && d.Boot == current.Boot
	})
	if _, ok := late.WaitMessage(30*time.Second, func(m testpeer.Message) bool {
		return m.Retained && m.Topic == "status/gw-kill/bridge" && string(m.Payload) == "1"
	}); !ok {
		t.Fatal("retained bridge state on the cloud is not 1")
	}

	// A clean stop says so before the bridge goes.
	stopped := gw.terminate(t)
	m, doc := waitStatus(t, sub, 10*time.Second, "status/gw-kill", stateAfter("offline", stopped))
	if doc.Reason != "stopped" || doc.Boot != current.Boot {
		t.Errorf("offline document at a clean stop: %s", m.Payload)
	}
	if _, ok := sub.WaitMessage(10*time.Second, payloadIs("status/gw-kill/bridge", "0", stopped)); !ok {
		t.Error("no bridge \"0\" on the cloud after a clean stop")
	}
	t.Logf("clean stop: status/gw-kill offline on the cloud after %s", m.At.Sub(stopped).Round(time.Millisecond))
}

// TestWillCrossesTheBridge: with a broker osgate does not manage (one the
// integrator runs, bridged to the cloud), a killed gateway's will reaches
// the cloud through that bridge: Mosquitto forwards a local client's will
// like any message on a bridged topic, retained.
func TestWillCrossesTheBridge(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	local := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Extra: strings.Join([]string{
		"connection cloud",
		"address " + cloud.Addr(),
		"remote_clientid osgate-gw-will",
		"cleansession false",
		"notifications true",
		"notification_topic status/gw-will/bridge",
		"topic telemetry/# out 1",
		"topic status/gw-will out 1",
		"topic status/gw-will/devices/# out 1",
	}, "\n")})
	cfg := writeConfig(t, fmt.Sprintf(`{"gateway":{"id":"gw-will","state_dir":%q},
		"broker":{"managed":false,"url":%q},"rpc":{"listen":"off"},
		"connectors":[{"name":"k","type":"test-switch","devices":[{"name":"w-1","interval":"200ms"}]}]}`,
		t.TempDir(), local.URL()))
	sub := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "t-cloud-will", Filter: "status/gw-will/#"})

	boots := map[string]bool{}
	for round := 1; round <= 3; round++ {
		started := time.Now()
		gw := startGatewayChild(t, cfg)
		_, online := waitStatus(t, sub, 60*time.Second, "status/gw-will", func(m testpeer.Message, d statusDoc) bool {
			return d.State == "online" && !boots[d.Boot] && !m.At.Before(started)
		})
		boots[online.Boot] = true
		killed := gw.kill(t)
		m, doc := waitStatus(t, sub, 10*time.Second, "status/gw-will", stateAfter("offline", killed))
		took := m.At.Sub(killed)
		t.Logf("round %d: gateway SIGKILLed; its will on the cloud after %s: %s", round, took.Round(time.Millisecond), m.Payload)
		if doc.Boot != online.Boot || !strings.Contains(doc.Reason, "killed") {
			t.Errorf("round %d: will %+v after online %+v", round, doc, online)
		}
		if took > 3*time.Second {
			t.Errorf("round %d: will on the cloud after %s, want within 3 s", round, took)
		}
	}
	late := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "t-cloud-will-late", Filter: "status/gw-will"})
	waitStatus(t, late, 30*time.Second, "status/gw-will", func(m testpeer.Message, d statusDoc) bool { return m.Retained && d.State == "offline" })
}

// TestBridgeCutShowsOfflineOnTheCloud cuts the link between the managed
// broker and the cloud with a proxy around the real cloud Mosquitto: a
// blackhole (cable pulled, router dead: nobody is told) is noticed by the
// cloud broker after 1.5 bridge keepalives and it publishes the bridge's
// will; a reset (both ends told) at once. Status changes made during the
// cut reach the cloud after it, retained.
func TestBridgeCutShowsOfflineOnTheCloud(t *testing.T) {
	const keepalive = 5 * time.Second // Mosquitto's smallest
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	link := testpeer.StartProxy(t, cloud.Addr())
	switchModes.Store("c-1", "ok")
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"c","type":"test-switch","devices":[{"name":"c-1","interval":"200ms"}]}`),
		`"broker": {"listen": "BROKER"}`, `"broker": {"listen": "BROKER", "bridge": {"address": "`+link.Addr()+`", "keepalive": "5s", "tls": false}}`, 1)
	start := time.Now()
	startGateway(t, doc)
	sub := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "t-cloud-cut", Filter: "status/gw-test/#"})
	waitStatus(t, sub, 60*time.Second, "status/gw-test", stateAfter("online", start))
	waitStatus(t, sub, 60*time.Second, "status/gw-test/devices/c-1", stateAfter("online", start))
	if _, ok := sub.WaitMessage(60*time.Second, payloadIs("status/gw-test/bridge", "1", start)); !ok {
		t.Fatal("the bridge never said 1 on the cloud")
	}

	for round := 1; round <= 2; round++ {
		cut := time.Now()
		link.Blackhole()
		m, ok := sub.WaitMessage(3*keepalive, payloadIs("status/gw-test/bridge", "0", cut))
		if !ok {
			t.Fatalf("round %d: no bridge \"0\" on the cloud within %s of the cut", round, 3*keepalive)
		}
		took := m.At.Sub(cut)
		t.Logf("round %d: link blackholed; status/gw-test/bridge \"0\" on the cloud after %s (keepalive %s)", round, took.Round(time.Millisecond), keepalive)
		// Mosquitto 2.0 checks keepalives every 6 s, in whole seconds.
		if took > keepalive*3/2+7*time.Second {
			t.Errorf("round %d: offline after %s, want within 1.5 keepalives + 7 s", round, took)
		}
		// A state change during the cut travels when the link is back.
		mode := map[int]string{1: "error", 2: "ok"}[round]
		switchModes.Store("c-1", mode)
		changed := time.Now()
		time.Sleep(time.Second)
		restored := time.Now()
		link.Restore()
		if _, ok := sub.WaitMessage(60*time.Second, payloadIs("status/gw-test/bridge", "1", restored)); !ok {
			t.Fatalf("round %d: the bridge did not come back within 60 s", round)
		}
		want := map[string]string{"error": "offline", "ok": "online"}[mode]
		waitStatus(t, sub, 60*time.Second, "status/gw-test/devices/c-1", stateAfter(want, changed))
	}

	reset := time.Now()
	link.Reset()
	m, ok := sub.WaitMessage(10*time.Second, payloadIs("status/gw-test/bridge", "0", reset))
	if !ok {
		t.Fatal("no bridge \"0\" on the cloud within 10 s of a reset")
	}
	t.Logf("link reset: status/gw-test/bridge \"0\" on the cloud after %s", m.At.Sub(reset).Round(time.Millisecond))
	if took := m.At.Sub(reset); took > 3*time.Second {
		t.Errorf("offline after a reset took %s, want within 3 s", took)
	}
	if _, ok := sub.WaitMessage(60*time.Second, payloadIs("status/gw-test/bridge", "1", reset)); !ok {
		t.Fatal("the bridge did not come back after a reset")
	}
	// The gateway itself never went away: its document says online.
	late := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "t-cloud-cut-late", Filter: "status/gw-test"})
	waitStatus(t, late, 30*time.Second, "status/gw-test", func(m testpeer.Message, d statusDoc) bool { return m.Retained && d.State == "online" })
}
