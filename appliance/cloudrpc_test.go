package appliance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/mqttrpc"
	"github.com/osgate/osgate/internal/testpeer"
)

// operatorKey is a cloud operator's key pair.
type operatorKey struct {
	name string
	priv ed25519.PrivateKey
}

func newOperatorKey(name string, seed byte) operatorKey {
	return operatorKey{name, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

func (o operatorKey) pub() string {
	return base64.StdEncoding.EncodeToString(o.priv.Public().(ed25519.PublicKey))
}

// TestRPCFromTheCloud: a client connected only to the cloud broker calls
// gateway.status and device.read on the gateway, through the managed
// broker's bridge, with signed requests; a request signed with another
// key, the same request under another id, and a write by a read-only key
// are refused. The gateway has no inbound port for it: the calls travel
// over its own bridge. Meanwhile a local process that subscribes to
// everything on the managed broker sees none of it, and `mosquitto_sub -t
// 'telemetry/#'` still reads telemetry.
func TestRPCFromTheCloud(t *testing.T) {
	ops, dash, intruder := newOperatorKey("cloud-ops", 1), newOperatorKey("dashboard", 2), newOperatorKey("cloud-ops", 3)
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"c1","type":"test-counter","devices":[{"name":"meter-1","interval":"1s","channels":[{"name":"seq","writable":true}]}]}`),
		`"broker": {"listen": "BROKER"}`, `"broker": {"listen": "BROKER", "bridge": {"address": "`+cloud.Addr()+`", "tls": false}}`, 1)
	doc = strings.Replace(doc, `"rpc": {`, `"rpc": {"operator_keys": [{"name": "cloud-ops", "public_key": "`+ops.pub()+`", "scope": "admin"},
		{"name": "dashboard", "public_key": "`+dash.pub()+`"}], `, 1)
	tg := startGateway(t, doc)

	// The intruder: any local process, subscribed to everything.
	var mu sync.Mutex
	var overheard []string
	spy := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(tg.broker).SetClientID("spy").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			overheard = append(overheard, m.Topic())
			mu.Unlock()
		}))
	if tok := spy.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the managed broker: %v", tok.Error())
	}
	defer spy.Disconnect(100)
	if tok := spy.SubscribeMultiple(map[string]byte{"rpc/#": 1, "#": 1}, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	responses := make(chan mqtt.Message, 16)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(cloud.URL()).SetClientID("cloud-app").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { responses <- m }))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to cloud: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("rpc/gw-test/response/#", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	send := func(topicID string, payload []byte) map[string]any {
		t.Helper()
		c.Publish("rpc/gw-test/request/"+topicID, 1, false, payload).Wait()
		timeout := time.After(3 * time.Second)
		for {
			select {
			case m := <-responses:
				if !strings.HasSuffix(m.Topic(), "/"+topicID) {
					continue // an answer to an earlier try
				}
				var resp map[string]any
				if err := json.Unmarshal(m.Payload(), &resp); err != nil {
					t.Fatalf("response %s: %v", m.Payload(), err)
				}
				return resp
			case <-timeout:
				return nil
			}
		}
	}
	var captured []byte // a request that ran, as anyone on the cloud broker sees it
	call := func(id string, key operatorKey, method string, params any) map[string]any {
		t.Helper()
		req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
		// The bridge may take a moment to come up: send again (a new id
		// each time) until an answer arrives.
		deadline := time.Now().Add(60 * time.Second)
		for try := 0; ; try++ {
			topicID := fmt.Sprintf("%s-%d", id, try)
			payload, err := mqttrpc.Sign(key.priv, key.name, "gw-test", topicID, time.Now().Add(5*time.Minute), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp := send(topicID, payload); resp != nil {
				captured = payload
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no answer through the bridge within 60 s", method)
			}
		}
	}
	st := call("status", ops, "gateway.status", nil)
	if res, ok := st["result"].(map[string]any); !ok || res["id"] != "gw-test" {
		t.Fatalf("gateway.status from the cloud: %v", st)
	}
	rd := call("read", ops, "device.read", map[string]any{"device": "meter-1"})
	res, ok := rd["result"].(map[string]any)
	if !ok || res["device"] != "meter-1" || len(res["readings"].([]any)) == 0 {
		t.Fatalf("device.read from the cloud: %v", rd)
	}
	// The captured device.read, published again under a new id: refused.
	if again := send("replayed", captured); again == nil || again["result"] != nil || again["error"].(map[string]any)["code"] != -32001.0 {
		t.Fatalf("a request re-published under a new id: %v", again)
	}
	bad := call("bad", intruder, "gateway.status", nil)
	if e, ok := bad["error"].(map[string]any); !ok || e["code"] != -32001.0 || bad["result"] != nil {
		t.Fatalf("another key's signature answered: %v", bad)
	}
	w := call("write", dash, "device.write", map[string]any{"device": "meter-1", "channel": "seq", "value": 1})
	if e, ok := w["error"].(map[string]any); !ok || e["code"] != -32005.0 {
		t.Fatalf("device.write by a read-only operator key: %v", w)
	}

	// mosquitto_sub, as the README shows it, still reads telemetry.
	sub := testpeer.LookPath(t, "mosquitto_sub", "mosquitto-clients")
	host, port, _ := strings.Cut(strings.TrimPrefix(tg.broker, "tcp://"), ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sub, "-h", host, "-p", port, "-t", "telemetry/#", "-v", "-C", "1", "-W", "30").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "telemetry/gw-test/meter-1 {") {
		t.Fatalf("mosquitto_sub -t 'telemetry/#': %v: %s", err, out)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, topic := range overheard {
		if !strings.HasPrefix(topic, "telemetry/") {
			t.Errorf("a local client without a username read %s", topic)
		}
	}
}
