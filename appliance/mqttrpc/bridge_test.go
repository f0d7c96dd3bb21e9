package mqttrpc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/broker"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
	"github.com/osgate/osgate/internal/tlsconf"
)

// bridged is a "cloud" Mosquitto, a managed broker (appliance/broker, its
// generated conf, ACL and limits) bridged to it, a Responder on the
// managed broker logged in as osgate's RPC client, and an app on the cloud.
type bridged struct {
	cloud   *testpeer.Mosquitto
	conf    []byte
	methods *methods
	resp    *running
	app     *caller
}

func startBridged(t *testing.T, gwID string) *bridged {
	t.Helper()
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	stateDir := t.TempDir()
	bcfg := config.Broker{
		Binary: testpeer.LookPath(t, "mosquitto", "mosquitto"),
		Listen: testpeer.Addr(testpeer.FreePort(t)),
		Bridge: &config.Bridge{Address: cloud.Addr(), TopicsOut: []string{"telemetry/#"}, Client: tlsconf.Client{TLS: new(false)}},
	}
	conf, err := broker.Conf(bcfg, gwID, stateDir, broker.Access{})
	if err != nil {
		t.Fatal(err)
	}
	brokerLogs := &logBuffer{}
	b := broker.New(bcfg, gwID, stateDir, slog.New(slog.NewTextHandler(brokerLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-brokerDone:
			if err != nil {
				t.Errorf("managed broker: %v", err)
			}
		case <-time.After(within):
			t.Errorf("managed broker did not stop within %s", within)
		}
		if t.Failed() {
			t.Logf("managed broker log:\n%s", brokerLogs.String())
		}
	})
	select {
	case <-b.Ready():
	case err := <-brokerDone:
		t.Fatalf("managed broker did not start: %v\n%s", err, brokerLogs.String())
	case <-time.After(within):
		t.Fatalf("managed broker not ready within %s\n%s", within, brokerLogs.String())
	}
	own, err := b.Clients()
	if err != nil {
		t.Fatal(err)
	}
	m := newMethods(t, gwID)
	resp := startResponder(t, Options{URL: b.URL(), GatewayID: gwID, Operators: testOperators(), Server: m.srv, StateDir: stateDir,
		Username: own.RPC.Username, Password: own.RPC.Password})
	return &bridged{cloud: cloud, conf: conf, methods: m, resp: resp, app: newCaller(t, cloud.URL(), "cloud-app", gwID)}
}

// warmUp asks gateway.status under new ids until the first answer comes
// back: the bridge connects and subscribes on the cloud in its own time.
func (br *bridged) warmUp(t *testing.T, gwID string) response {
	t.Helper()
	deadline := time.Now().Add(2 * within)
	for i := 0; ; i++ {
		id := fmt.Sprintf("warmup-%d", i)
		br.app.send(t, id, ops.signFor(gwID, id, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
		if b, ok := br.app.await(id, 2*time.Second); ok {
			return decodeResponse(t, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through the bridge within %s", 2*within)
		}
	}
}

// TestThroughBridge is the evidence: a client connected only to
// the "cloud" Mosquitto calls gateway.status and device.read on a gateway
// whose managed Mosquitto bridges the RPC topics, signed with the
// operator key and with another.
func TestThroughBridge(t *testing.T) {
	const gwID = "gw-bridge"
	br := startBridged(t, gwID)
	in, out := BridgeTopics(gwID)
	for _, line := range []string{"topic " + in + " in 1", "topic " + out + " out 1", "connection osgate-cloud"} {
		if !bytes.Contains(br.conf, []byte(line+"\n")) {
			t.Fatalf("broker.Conf lacks %q:\n%s", line, br.conf)
		}
	}
	first := br.warmUp(t, gwID)
	if first.Error != nil || !bytes.Contains(first.Result, []byte(`"`+gwID+`"`)) {
		t.Fatalf("gateway.status through the bridge: result %s, error %v", first.Result, first.Error)
	}

	r := br.app.call(t, "read-good", ops.signFor(gwID, "read-good", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":"a"}`))
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"voltage_l1"`)) || string(r.ID) != `"a"` {
		t.Fatalf("device.read through the bridge: %s / %v", r.Result, r.Error)
	}
	reads := br.methods.reads.Load()
	calls := br.methods.status.Load()
	authFails := counterValue(t, metrics.RPCAuthFailures)
	r = br.app.call(t, "read-bad", intruder.signFor(gwID, "read-bad", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":"b"}`))
	wantError(t, r, rpc.CodeUnauthorized, "signature does not match")
	r = br.app.call(t, "status-bad", intruder.signFor(gwID, "status-bad", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
	wantError(t, r, rpc.CodeUnauthorized, "signature does not match")
	if br.methods.reads.Load() != reads || br.methods.status.Load() != calls {
		t.Fatalf("a method ran for a bad signature")
	}
	if d := counterValue(t, metrics.RPCAuthFailures) - authFails; d != 2 {
		t.Fatalf("osgate_rpc_auth_failures_total grew by %v, want 2", d)
	}
}

// TestHugeRequestsNeverReachTheResponder: anyone who may publish on the
// cloud sends three 100 MB messages to the gateway's request topic. The
// managed broker drops them (message_size_limit: rpc.max_body), so the
// responder never reads them: the gateway allocates next to nothing
// meanwhile, and a request sent after them is answered.
func TestHugeRequestsNeverReachTheResponder(t *testing.T) {
	const (
		gwID    = "gw-huge"
		size    = 100 << 20
		ceiling = 16 << 20 // allocated by this process while they pass
	)
	br := startBridged(t, gwID)
	br.warmUp(t, gwID)
	file := filepath.Join(t.TempDir(), "huge")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	pub := testpeer.LookPath(t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := strings.Cut(br.cloud.Addr(), ":")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Another process publishes them, so that only what the gateway's
	// side allocates is counted here.
	for i := range 3 {
		cmd := exec.Command(pub, "-h", host, "-p", port, "-q", "1", "-i", fmt.Sprintf("attacker-%d", i),
			"-t", fmt.Sprintf("rpc/%s/request/huge-%d", gwID, i), "-f", file)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub of %d MB: %v: %s", size>>20, err, out)
		}
	}
	// The bridge passes messages on in order: once this one is answered,
	// the huge ones have been through the managed broker.
	r := br.app.call(t, "after-huge", ops.signFor(gwID, "after-huge", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
	if r.Error != nil {
		t.Fatalf("a request after the huge ones: %v", r.Error)
	}
	time.Sleep(time.Second)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MB while 3 × %d MB messages were sent to the request topic", float64(allocated)/(1<<20), size>>20)
	if allocated > ceiling {
		t.Errorf("the gateway's side allocated %.1f MB while 3 × %d MB requests passed; want under %d MB", float64(allocated)/(1<<20), size>>20, ceiling>>20)
	}
	br.resp.out.mu.Lock()
	defer br.resp.out.mu.Unlock()
	for id, outs := range br.resp.out.byID {
		if strings.HasPrefix(id, "huge-") {
			t.Errorf("the responder read %s (%v): the broker let it through", id, outs)
		}
	}
}
