package zwave

import (
	"os"
	"testing"
	"time"

	"github.com/osgate/osgate/config"
)

// The integrator's example passes the gateway's own config validation,
// which builds this connector from it.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../examples/zwave.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatalf("examples/zwave.json: %v", err)
	}
	conn, err := New(cfg.ConnectorConfig(0, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := conn.(*Connector)
	if c.set.Port != "auto" || !c.set.SoftReset || c.set.ReportTimeout != 10*time.Second {
		t.Errorf("settings: %+v", c.set)
	}
	want := map[string]byte{"office-climate": 2, "washer-meter": 3, "pump-relay": 4, "hall-dimmer": 5, "front-door-lock": 6, "garden-sensor": 7, "back-door": 8}
	for name, node := range want {
		d := c.byName[name]
		if d == nil || d.node != node || len(d.channels) == 0 {
			t.Errorf("device %s: %+v, want node %d", name, d, node)
		}
	}
	if d := c.byName["back-door"]; d == nil || len(d.channels) != 4 || d.channels[1] != "notification_access_control" {
		t.Errorf("back-door: %+v", d)
	}
	lock := cfg.Connectors[0].Devices[4]
	if lock.Name != "front-door-lock" || c.byName["front-door-lock"].channels[0] != "lock" || !lock.Channels[0].Writable {
		t.Errorf("the lock: %+v", lock)
	}
}
