package mqttrpc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/broker"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestThroughBridge is the evidence: a client connected only to
// the "cloud" Mosquitto calls gateway.status and device.read on a gateway
// whose managed Mosquitto (appliance/broker, its generated conf) bridges
// the RPC topics, with a good key and a bad one.
func TestThroughBridge(t *testing.T) {
	const gwID = "gw-bridge"
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	stateDir := t.TempDir()
	in, out := BridgeTopics(gwID)
	bcfg := config.Broker{
		Binary: testpeer.LookPath(t, "mosquitto", "mosquitto"),
		Listen: testpeer.Addr(testpeer.FreePort(t)),
		Bridge: &config.Bridge{Address: cloud.Addr(), TopicsOut: []string{"telemetry/#"}},
	}
	// Add the RPC topics unless broker.Conf already writes them.
	conf, err := broker.Conf(bcfg, gwID, stateDir, broker.Access{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(conf, []byte("topic "+in+" in")) {
		bcfg.Bridge.TopicsIn = append(bcfg.Bridge.TopicsIn, in)
	}
	if !bytes.Contains(conf, []byte("topic "+out+" out")) {
		bcfg.Bridge.TopicsOut = append(bcfg.Bridge.TopicsOut, out)
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

	m := newMethods(t, gwID)
	own, err := b.Clients()
	if err != nil {
		t.Fatal(err)
	}
	startResponder(t, Options{URL: b.URL(), GatewayID: gwID, Operators: testOperators(), Server: m.srv, StateDir: stateDir,
		Username: own.RPC.Username, Password: own.RPC.Password})
	app := newCaller(t, cloud.URL(), "cloud-app", gwID)

	// The bridge connects and subscribes on the cloud in its own time: ask
	// under new ids until the first answer comes back.
	status := `{"jsonrpc":"2.0","method":"gateway.status","id":1}`
	deadline := time.Now().Add(2 * within)
	var first response
	for i := 0; ; i++ {
		id := fmt.Sprintf("warmup-%d", i)
		app.send(t, id, ops.signFor(gwID, id, soon(), status))
		if b, ok := app.await(id, 2*time.Second); ok {
			first = decodeResponse(t, b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through the bridge within %s", 2*within)
		}
	}
	if first.Error != nil || !bytes.Contains(first.Result, []byte(`"`+gwID+`"`)) {
		t.Fatalf("gateway.status through the bridge: result %s, error %v", first.Result, first.Error)
	}

	r := app.call(t, "read-good", ops.signFor(gwID, "read-good", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":"a"}`))
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"voltage_l1"`)) || string(r.ID) != `"a"` {
		t.Fatalf("device.read through the bridge: %s / %v", r.Result, r.Error)
	}
	reads := m.reads.Load()
	calls := m.status.Load()
	authFails := counterValue(t, metrics.RPCAuthFailures)
	r = app.call(t, "read-bad", intruder.signFor(gwID, "read-bad", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":"b"}`))
	wantError(t, r, rpc.CodeUnauthorized, "signature does not match")
	r = app.call(t, "status-bad", intruder.signFor(gwID, "status-bad", soon(), status))
	wantError(t, r, rpc.CodeUnauthorized, "signature does not match")
	if m.reads.Load() != reads || m.status.Load() != calls {
		t.Fatalf("a method ran for a bad key")
	}
	if d := counterValue(t, metrics.RPCAuthFailures) - authFails; d != 2 {
		t.Fatalf("osgate_rpc_auth_failures_total grew by %v, want 2", d)
	}
	if !strings.Contains(string(conf), "connection osgate-cloud") {
		t.Fatalf("broker.Conf wrote no bridge:\n%s", conf)
	}
}
