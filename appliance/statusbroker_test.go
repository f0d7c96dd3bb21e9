package appliance_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestStatusTurnsOkWithTheBroker: a gateway that starts while its export
// broker is down says so in its document (degraded, kept in its spool);
// when the broker is back, the document that says ok follows at once, not
// at the next heartbeat (an hour here).
func TestStatusTurnsOkWithTheBroker(t *testing.T) {
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	br.Stop()
	rpcAddr := testpeer.Addr(testpeer.FreePort(t))
	doc := fmt.Sprintf(`{"gateway": {"id": "gw-late", "state_dir": %q, "status_interval": "1h"},
		"broker": {"managed": false, "url": %q}, "rpc": {"listen": %q}, "connectors": []}`,
		t.TempDir(), br.URL(), rpcAddr)
	g, _ := apptest.Start(t, doc, rpcAddr)
	testpeer.WaitFor(t, 30*time.Second, "the gateway degraded by its absent broker", func() bool {
		return g.Health().Report().Status != health.OK
	})
	time.Sleep(2 * time.Second) // the degraded document is made and queued
	br.Start()
	sub := testpeer.Subscribe(t, br.URL(), testpeer.SubscriberOptions{ClientID: "t-late", Filter: "status/gw-late"})
	var last string
	if _, ok := sub.WaitMessage(20*time.Second, func(m testpeer.Message) bool {
		var d export.GatewayStatus
		last = string(m.Payload)
		return json.Unmarshal(m.Payload, &d) == nil && d.State == "online" && d.Health != nil && d.Health.Status == "ok"
	}); !ok {
		t.Fatalf("no ok status document within 20 s of the broker's return; last: %s", last)
	}
}
