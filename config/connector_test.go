package config

import (
	"log/slog"
	"testing"
	"time"
)

func TestConnectorConfig(t *testing.T) {
	c, err := Parse([]byte(`{"gateway": {"state_dir": "/var/lib/osgate"}, "connectors": [
	  {"name": "bus", "type": "test-config-xyz", "settings": {"port": "/dev/ttyUSB0"}, "devices": [
	    {"name": "m", "interval": "2s", "unit_id": 7, "channels": [
	      {"name": "v", "register": 3, "unit": "V", "writable": true, "scale": 0.1, "rename": "volt"}]}]},
	  {"name": "none", "type": "test-config-xyz", "settings": {"port": "p"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cc := c.ConnectorConfig(0, nil)
	if cc.Name != "bus" || cc.Type != "test-config-xyz" || string(cc.Settings) != `{"port":"/dev/ttyUSB0"}` ||
		cc.StateDir != "/var/lib/osgate" || cc.Logger == nil || len(cc.Devices) != 1 {
		t.Fatalf("connector config %+v", cc)
	}
	d := cc.Devices[0]
	if d.Name != "m" || d.Interval != 2*time.Second || d.Timeout != 2*time.Second || string(d.Settings) != `{"unit_id":7}` || len(d.Channels) != 1 {
		t.Fatalf("device %+v", d)
	}
	if ch := d.Channels[0]; ch.Name != "v" || ch.Unit != "V" || !ch.Writable || string(ch.Settings) != `{"register":3}` {
		t.Fatalf("channel %+v", ch)
	}
	log := slog.Default()
	if cc := c.ConnectorConfig(1, log); cc.Logger != log || len(cc.Devices) != 0 {
		t.Fatalf("second connector %+v", cc)
	}
	// Settings are a copy: a driver cannot change the config.
	cc.Settings[2] = 'X'
	if string(c.Connectors[0].Settings) != `{"port":"/dev/ttyUSB0"}` {
		t.Fatal("ConnectorConfig shares settings bytes with the config")
	}
}

// TestConnectorConfigWithoutParse: a Config built in code (no Parse) still
// gives drivers "{}" settings and default timing.
func TestConnectorConfigWithoutParse(t *testing.T) {
	c := &Config{Connectors: []Connector{{Name: "x", Type: "t", Settings: []byte("null"),
		Devices: []Device{{Name: "d", Interval: time.Minute, Channels: []Channel{{Name: "c"}}}}}}}
	cc := c.ConnectorConfig(0, nil)
	d := cc.Devices[0]
	if string(cc.Settings) != "{}" || string(d.Settings) != "{}" || string(d.Channels[0].Settings) != "{}" ||
		d.Timeout != 5*time.Second {
		t.Fatalf("connector config %+v, device %+v", cc, d)
	}
}

func TestValidationClosesConnectors(t *testing.T) {
	before := closes.Load()
	if _, err := Parse([]byte(minimal)); err != nil {
		t.Fatal(err)
	}
	if got := closes.Load() - before; got != 1 {
		t.Fatalf("validation closed %d connectors, want 1", got)
	}
}
