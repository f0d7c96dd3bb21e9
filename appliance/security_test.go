package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestKeyScopesAtTheGateway: a configured key without a scope may read
// (status, lists, device.read) and nothing more, as configurations from
// before scopes have it; the gateway's local key (state/rpc-key, what
// `osgate rpc` uses) may do everything.
func TestKeyScopesAtTheGateway(t *testing.T) {
	const readerKey = "reader-key-5c7d1e2f3a4b"
	state := t.TempDir()
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"c1","type":"test-counter","devices":[{"name":"meter-1","interval":"1h","channels":[{"name":"value","writable":true}]}]}`),
		`"scope": "admin"}]`, `"scope": "admin"}, {"name": "dashboard", "sha256": "`+apikey.Hash(readerKey)+`"}]`, 1)
	doc = strings.Replace(doc, `"state_dir": "STATE"`, `"state_dir": "`+state+`"`, 1)
	tg := startGateway(t, doc)
	url := tg.rpcURL
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	reader := rpc.NewClient(url, readerKey, nil)
	defer reader.Close()
	if err := reader.Call(ctx, "gateway.status", nil, nil); err != nil {
		t.Fatalf("gateway.status with a key without scope: %v", err)
	}
	if err := reader.Call(ctx, "device.read", map[string]any{"device": "meter-1"}, nil); err != nil {
		t.Fatalf("device.read with a key without scope: %v", err)
	}
	for method, params := range map[string]any{
		"device.write":       map[string]any{"device": "meter-1", "channel": "value", "value": 1},
		"connectors.restart": map[string]any{"name": "c1"},
		"gateway.config":     nil,
	} {
		var rerr *rpc.Error
		if err := reader.Call(ctx, method, params, nil); !errors.As(err, &rerr) || rerr.Code != rpc.CodeForbidden {
			t.Errorf("%s with a key without scope: %v, want -32005", method, err)
		}
	}

	key, err := os.ReadFile(filepath.Join(state, LocalKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	local := rpc.NewClient(url, strings.TrimSpace(string(key)), nil)
	defer local.Close()
	if err := local.Call(ctx, "device.write", map[string]any{"device": "meter-1", "channel": "value", "value": 1}, nil); err != nil {
		t.Fatalf("device.write with the local key: %v", err)
	}
	if err := local.Call(ctx, "gateway.config", nil, nil); err != nil {
		t.Fatalf("gateway.config with the local key: %v", err)
	}
}

// TestExportOverBrokerLimitDropped: a device's message larger than the
// managed broker accepts (rpc.max_body, its message_size_limit) would be
// dropped by Mosquitto without a word; the gateway drops it first, counts
// its readings and says so in the log.
func TestExportOverBrokerLimitDropped(t *testing.T) {
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"big","type":"test-counter","devices":[{"name":"big-1","interval":"100ms"}]}`),
		`"rpc": {`, `"rpc": {"max_body": 64, `, 1)
	before := dropped(t, "big")
	tg := startGateway(t, doc)
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-big", Filter: "telemetry/#"})
	deadline := time.Now().Add(30 * time.Second)
	for dropped(t, "big")-before < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("%v readings counted as too large within 30 s", dropped(t, "big")-before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(sub.Messages()); n != 0 {
		t.Fatalf("%d messages over the limit reached the broker", n)
	}
}

func dropped(t *testing.T, connector string) float64 {
	t.Helper()
	return metrics.ReadingsDropped.WithLabelValues(connector, "too_large").Value()
}
