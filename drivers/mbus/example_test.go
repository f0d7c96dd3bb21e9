package mbus

import (
	"os"
	"testing"

	"github.com/osgate/osgate/config"
)

// The integrator's example passes the gateway's own config validation,
// which builds this connector from it.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../examples/mbus.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatalf("examples/mbus.json: %v", err)
	}
	conn, err := New(cfg.ConnectorConfig(0, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := conn.(*Connector)
	heat, water := c.devices["heat-meter"], c.devices["water-meter"]
	if heat == nil || heat.addr != (Address{Primary: 5}) || len(heat.channels) != 7 || heat.channels[5].storage != 1 || heat.channels[6].record != 3 {
		t.Errorf("heat-meter: %+v", heat)
	}
	if water == nil || water.addr.Secondary != "12345678FFFFFFFF" || water.channels[2].function != FuncMaximum {
		t.Errorf("water-meter: %+v", water)
	}
	if c.bus.cfg.Baud != 2400 || c.bus.cfg.Parity != "even" || c.bus.cfg.Path != "/dev/ttyUSB0" {
		t.Errorf("line: %+v", c.bus.cfg)
	}
}
