package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/internal/prom"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
	"github.com/osgate/osgate/internal/tlsconf"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runBroker starts a managed broker on a free port and waits until it is
// ready; it is stopped (and waited for) when the test ends.
func runBroker(t *testing.T, cfg config.Broker) *Broker {
	t.Helper()
	return runBrokerIn(t, cfg, t.TempDir(), nil)
}

// runBrokerIn is runBroker on a given state dir, with tune applied to the
// Broker before it runs.
func runBrokerIn(t *testing.T, cfg config.Broker, stateDir string, tune func(*Broker)) *Broker {
	t.Helper()
	b, _ := startBroker(t, cfg, stateDir, tune)
	return b
}

// startBroker is runBrokerIn for a test that stops the broker itself
// before it ends: stop ends Run and returns once it has; the test's
// cleanup calls it too, and only the first call does anything.
func startBroker(t *testing.T, cfg config.Broker, stateDir string, tune func(*Broker)) (b *Broker, stop func()) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = testpeer.Addr(testpeer.FreePort(t))
	}
	cfg.Binary = testpeer.LookPath(t, "mosquitto", "mosquitto")
	b = New(cfg, "gw-test", stateDir, testLogger(t))
	if tune != nil {
		tune(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("Run did not return within 60s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("broker did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("broker not ready within 60s")
	}
	return b, stop
}

func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	b := New(config.Broker{Listen: l.Addr().String()}, "gw", t.TempDir(), testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if err == nil {
		t.Fatal("Run on a taken port returned nil")
	}
	for _, want := range []string{strconv.Itoa(port), "taken", "systemctl stop mosquitto"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBadConfFailsFirstStart(t *testing.T) {
	b := New(config.Broker{Listen: testpeer.Addr(testpeer.FreePort(t)), Binary: "/nonexistent/mosquitto"}, "gw", t.TempDir(), testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Run(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/mosquitto") {
		t.Fatalf("Run with a missing binary: %v", err)
	}
}

// TestRestartsKilledBroker: mosquitto killed from outside is started again
// on the same port, and the restart is counted.
func TestRestartsKilledBroker(t *testing.T) {
	before := counterValue(t, metrics.BrokerRestarts)
	b := runBroker(t, config.Broker{})
	conf, err := os.ReadFile(filepath.Join(b.dir, confFileName))
	if err != nil || !strings.Contains(string(conf), "persistence true") {
		t.Fatalf("conf not written: %v\n%s", err, conf)
	}
	for round := range 2 {
		pid := b.pid()
		if pid == 0 {
			t.Fatal("no pid of a running broker")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if p := b.pid(); p != 0 && p != pid {
				if c, err := net.DialTimeout("tcp", b.dialAddr(), time.Second); err == nil {
					c.Close()
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: broker not restarted within 60s of SIGKILL", round)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := counterValue(t, metrics.BrokerRestarts) - before; got < 2 {
		t.Fatalf("BrokerRestarts grew by %v after two kills, want at least 2", got)
	}
}

// TestBridgeSurvivesCloudOutage: a plain Mosquitto plays the cloud; the
// managed broker bridges to it. The cloud is stopped for 30 s while more
// messages than Mosquitto's default queue (1000) flow through the export
// sink into the managed broker; every one reaches the cloud's persistent
// subscriber after the cloud returns.
func TestBridgeSurvivesCloudOutage(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	sub := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "cloud-app", Filter: "telemetry/#",
		Key: func(_ string, p []byte) string { return string(p) }})
	b := runBroker(t, config.Broker{Bridge: &config.Bridge{Address: cloud.Addr(), Client: tlsconf.Client{TLS: new(false)}}})

	own := clients(t, b)
	sink, err := export.New(export.Options{URL: b.URL(), ClientID: "osgate-gw-test", QoS: 1, StoreDir: t.TempDir(),
		Username: own.Export.Username, Password: own.Export.Password, RetryMax: 500 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sink.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	seq := 0
	publish := func(n int, pause time.Duration) {
		t.Helper()
		for range n {
			if err := sink.Publish(ctx, "telemetry/gw-test/meter", []byte("seq="+strconv.Itoa(seq))); err != nil {
				t.Fatal(err)
			}
			seq++
			time.Sleep(pause)
		}
	}
	publish(20, 0)
	waitKeys(t, sub, 0, 20, 60*time.Second) // the bridge is up

	cloud.Stop()
	outage := time.Now()
	for time.Since(outage) < 30*time.Second {
		publish(100, 10*time.Millisecond) // ~ 60/s for 30 s
	}
	during := seq - 20
	if during <= 1000 {
		t.Fatalf("only %d messages during the outage: not more than Mosquitto's default queue, the test proves nothing", during)
	}
	cloud.Start()
	publish(20, 0)
	waitKeys(t, sub, 0, seq, 120*time.Second)
	t.Logf("%d messages, %d during the 30 s outage: all arrived at the cloud, %d duplicates", seq, during, sub.Duplicates())
}

func waitKeys(t *testing.T, sub *testpeer.Subscriber, from, to int, within time.Duration) {
	t.Helper()
	keys := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		keys = append(keys, fmt.Sprintf("seq=%d", i))
	}
	if miss := sub.WaitKeys(keys, within); len(miss) > 0 {
		t.Fatalf("%d of %d messages did not reach the cloud within %s (first %v); %d distinct arrived",
			len(miss), len(keys), within, miss[:min(10, len(miss))], sub.Distinct())
	}
}

func counterValue(t testing.TB, c *prom.Counter) float64 {
	t.Helper()
	return c.Value()
}

// TestBridgeTLSAndPassword: the bridge's TLS and credential lines work
// against a cloud broker that requires both.
func TestBridgeTLSAndPassword(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true, Users: map[string]string{"gw-test": "s3cret"}})
	sub := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "cloud-app", Filter: "telemetry/#",
		Username: "gw-test", Password: "s3cret", CAFile: cloud.CAFile(), Key: func(_ string, p []byte) string { return string(p) }})
	b := runBroker(t, config.Broker{Bridge: &config.Bridge{Address: cloud.Addr(),
		Username: "gw-test", Password: "s3cret",
		Client: tlsconf.Client{CAFile: cloud.CAFile()},
	}})
	own := clients(t, b)
	sink, err := export.New(export.Options{URL: b.URL(), ClientID: "osgate-gw-test", QoS: 1, StoreDir: t.TempDir(),
		Username: own.Export.Username, Password: own.Export.Password, RetryMax: 500 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sink.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	for i := range 10 {
		if err := sink.Publish(ctx, "telemetry/gw-test/meter", []byte("seq="+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitKeys(t, sub, 0, 10, 60*time.Second)
	if !strings.Contains(cloud.Log(), "osgate-gw-test") {
		t.Fatalf("the cloud did not see the bridge's client id osgate-gw-test:\n%s", cloud.Log())
	}
}

// TestPasswordFileAccepted: with broker.username set, the managed broker
// takes the password file osgate writes and refuses a wrong password; with
// anonymous_read false, clients without a username too.
func TestPasswordFileAccepted(t *testing.T) {
	b := runBroker(t, config.Broker{Username: "osgate", Password: "pa ss:wörd", AnonymousRead: new(false)})
	conf, err := os.ReadFile(filepath.Join(b.dir, confFileName))
	if err != nil || !strings.Contains(string(conf), "allow_anonymous false") {
		t.Fatalf("conf: %v\n%s", err, conf)
	}
	connect := func(user, pass string) error {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("pw-check-" + user).
			SetUsername(user).SetPassword(pass).SetConnectTimeout(10 * time.Second))
		tok := c.Connect()
		if !tok.WaitTimeout(30 * time.Second) {
			return fmt.Errorf("connect timed out")
		}
		if tok.Error() == nil {
			c.Disconnect(100)
		}
		return tok.Error()
	}
	if err := connect("osgate", "pa ss:wörd"); err != nil {
		t.Fatalf("the configured user was refused: %v", err)
	}
	if err := connect("osgate", "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := connect("", ""); err == nil {
		t.Fatal("an anonymous client was accepted")
	}
}

// clients are the logins of osgate's own clients of b.
func clients(t *testing.T, b *Broker) Clients {
	t.Helper()
	own, err := b.Clients()
	if err != nil {
		t.Fatal(err)
	}
	return own
}
