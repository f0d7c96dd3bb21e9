package appliance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/testpeer"
)

// TestRPCFromTheCloud: a client connected only to the cloud broker calls
// gateway.status and device.read on the gateway, through the managed
// broker's bridge, with the right key and with a wrong one. The gateway
// has no inbound port for it: the calls travel over its own bridge.
func TestRPCFromTheCloud(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"c1","type":"test-counter","devices":[{"name":"meter-1","interval":"1h","channels":[{"name":"seq"}]}]}`),
		`"broker": {"listen": "BROKER"}`, `"broker": {"listen": "BROKER", "bridge": {"address": "`+cloud.Addr()+`"}}`, 1)
	startGateway(t, doc)

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
	call := func(id, key, method string, params any) map[string]any {
		t.Helper()
		req, _ := json.Marshal(map[string]any{
			"key":     key,
			"expires": time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339),
			"request": map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1},
		})
		// The bridge may take a moment to come up: send again (a new id
		// each time) until an answer arrives.
		deadline := time.Now().Add(60 * time.Second)
		for try := 0; ; try++ {
			topicID := fmt.Sprintf("%s-%d", id, try)
			c.Publish("rpc/gw-test/request/"+topicID, 1, false, req).Wait()
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
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no answer through the bridge within 60 s", method)
			}
		}
	}
	st := call("status", testKey, "gateway.status", nil)
	if res, ok := st["result"].(map[string]any); !ok || res["id"] != "gw-test" {
		t.Fatalf("gateway.status from the cloud: %v", st)
	}
	rd := call("read", testKey, "device.read", map[string]any{"device": "meter-1"})
	res, ok := rd["result"].(map[string]any)
	if !ok || res["device"] != "meter-1" || len(res["readings"].([]any)) == 0 {
		t.Fatalf("device.read from the cloud: %v", rd)
	}
	bad := call("bad", "not-the-key-123456", "gateway.status", nil)
	if e, ok := bad["error"].(map[string]any); !ok || e["code"] != -32001.0 || bad["result"] != nil {
		t.Fatalf("wrong key answered: %v", bad)
	}
}
