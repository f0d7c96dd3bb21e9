package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// withHost and withPerm replace the host name and /perm for one test.
func withHost(t *testing.T, name string, err error) {
	old := hostname
	hostname = func() (string, error) { return name, err }
	t.Cleanup(func() { hostname = old })
}

func withPerm(t *testing.T, dir string) {
	old := permDir
	permDir = dir
	t.Cleanup(func() { permDir = old })
}

func TestDefaults(t *testing.T) {
	withHost(t, "pi 4/b+#1", nil)
	withPerm(t, filepath.Join(t.TempDir(), "no-perm"))
	c, err := Parse([]byte(`{"broker": {"bridge": {"address": "cloud.example:8883", "tls": false}},
	  "connectors": [{"name": "bus", "type": "test-config-xyz", "settings": {"port": "p"}, "devices": [
	    {"name": "slow", "interval": "1m", "channels": [{"name": "c", "register": 1, "deadband": {"absolute": 1}}]},
	    {"name": "fast", "interval": "2s"},
	    {"name": "plain"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	checks := []struct {
		what      string
		got, want any
	}{
		{"gateway.id", c.Gateway.ID, "pi-4-b--1"},
		{"gateway.state_dir", c.Gateway.StateDir, filepath.Join(wd, "state")},
		{"gateway.config_grace", c.Gateway.ConfigGrace, 2 * time.Minute},
		{"gateway.disk_warn_bytes", c.Gateway.DiskWarnBytes, int64(0)}, // automatic: see appliance/disk.go
		{"gateway.status_interval", c.Gateway.StatusInterval, 5 * time.Minute},
		{"broker.managed", *c.Broker.Managed, true},
		{"broker.listen", c.Broker.Listen, "127.0.0.1:1883"},
		{"broker.binary", c.Broker.Binary, "mosquitto"},
		{"broker.autosave_interval", c.Broker.AutosaveInterval, 5 * time.Second},
		{"broker.bridge.client_id", c.Broker.Bridge.ClientID, "osgate-pi-4-b--1"},
		{"broker.bridge.topics_out", c.Broker.Bridge.TopicsOut, []string{"telemetry/#"}},
		{"broker.bridge.qos", *c.Broker.Bridge.QoS, 1},
		{"broker.bridge.keepalive", c.Broker.Bridge.Keepalive, time.Minute},
		{"export.topic", c.Export.Topic, "telemetry/{gateway}/{device}"},
		{"export.qos", *c.Export.QoS, 1},
		{"export.client_id", c.Export.ClientID, "osgate-pi-4-b--1"},
		{"export.queue_limit", c.Export.QueueLimit, 100000},
		{"rpc.listen", c.RPC.Listen, "127.0.0.1:8080"},
		{"rpc.max_body", c.RPC.MaxBody, int64(1 << 20)},
		{"connectors[0].enabled", *c.Connectors[0].Enabled, true},
		{"slow interval", c.Connectors[0].Devices[0].Interval, time.Minute},
		{"slow timeout", c.Connectors[0].Devices[0].Timeout, 5 * time.Second},
		{"fast timeout", c.Connectors[0].Devices[1].Timeout, 2 * time.Second},
		{"plain interval", c.Connectors[0].Devices[2].Interval, 10 * time.Second},
		{"plain timeout", c.Connectors[0].Devices[2].Timeout, 5 * time.Second},
		{"max_silence", *c.Connectors[0].Devices[0].Channels[0].Deadband.MaxSilence, 5 * time.Minute},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.what, ck.got, ck.want)
		}
	}
}

func TestDefaultsKeepWhatIsSet(t *testing.T) {
	c, err := Parse([]byte(`{"gateway": {"id": "gw", "state_dir": "rel/dir", "disk_warn_bytes": 1000},
	  "broker": {"listen": "127.0.0.1:1999", "autosave_interval": "1s",
	    "bridge": {"address": "c:1", "tls": false, "client_id": "me", "topics_out": [], "topics_in": ["cmd/#"], "qos": 0}},
	  "export": {"topic": "x/{device}", "qos": 0, "client_id": "cid", "queue_limit": 7},
	  "rpc": {"listen": "off", "max_body": 10},
	  "connectors": [{"name": "bus", "type": "test-config-xyz", "enabled": false, "settings": {"port": "p"},
	    "devices": [{"name": "d", "interval": "1s", "timeout": "300ms", "channels": [
	      {"name": "c", "register": 1, "deadband": {"percent": 1, "max_silence": "0s"}}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	b := c.Broker.Bridge
	d := c.Connectors[0].Devices[0]
	if c.Gateway.StateDir != filepath.Join(wd, "rel/dir") || c.Gateway.DiskWarnBytes != 1000 || c.Broker.Listen != "127.0.0.1:1999" ||
		c.Broker.AutosaveInterval != time.Second || b.ClientID != "me" || len(b.TopicsOut) != 0 || *b.QoS != 0 ||
		c.Export.Topic != "x/{device}" || *c.Export.QoS != 0 || c.Export.ClientID != "cid" || c.Export.QueueLimit != 7 ||
		c.RPC.Listen != RPCOff || c.RPC.MaxBody != 10 || *c.Connectors[0].Enabled ||
		d.Timeout != 300*time.Millisecond || *d.Channels[0].Deadband.MaxSilence != 0 {
		t.Fatalf("a set value was overwritten: %+v", c)
	}
}

func TestDefaultStateDirOnAppliance(t *testing.T) {
	perm := t.TempDir()
	withPerm(t, perm)
	c, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(perm, "osgate"); c.Gateway.StateDir != want {
		t.Fatalf("state_dir %q, want %q", c.Gateway.StateDir, want)
	}
}

func TestDefaultIDWithoutHostName(t *testing.T) {
	old := machineID
	t.Cleanup(func() { machineID = old })
	machineID = func() string { return "" } // and no serial number either
	for _, h := range []struct {
		name string
		err  error
	}{{"", errors.New("no host name")}, {"", nil}, {"///", nil}} {
		withHost(t, h.name, h.err)
		c, err := Parse([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.Gateway.ID != "osgate" {
			t.Fatalf("host %q (%v): id %q, want osgate", h.name, h.err, c.Gateway.ID)
		}
	}
}

// TestDefault parses the embedded default. It registers a stand-in
// "system" type only when the real one is not linked in.
func TestDefault(t *testing.T) {
	standIns(t, defaultJSON)
	c := Default()
	if len(c.Connectors) != 1 {
		t.Fatalf("%d connectors", len(c.Connectors))
	}
	cn := c.Connectors[0]
	if cn.Name != "system" || cn.Type != "system" || len(cn.Devices) != 1 || cn.Devices[0].Name != "gateway" ||
		cn.Devices[0].Interval != 10*time.Second || c.Export.Topic != defaultTopic || c.Gateway.ID == "" {
		t.Fatalf("default config %+v", c)
	}
}

// TestSystemExample: examples/system.json, the annotated default, means
// exactly what the embedded default means.
func TestSystemExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "examples", "system.json"))
	if err != nil {
		t.Fatal(err)
	}
	standIns(t, b)
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("examples/system.json: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("examples/system.json differs from the default:\n%+v\nwant\n%+v", got, want)
	}
}

// TestDefaultIDOnAnApplianceImage: every device of an image has the host
// name "gokrazy"; each gets its own id from its board's serial number.
func TestDefaultIDOnAnApplianceImage(t *testing.T) {
	old := machineID
	t.Cleanup(func() { machineID = old })
	machineID = func() string { return "3a4f9c21" }
	withHost(t, "gokrazy", nil)
	if id := defaultID(); id != "gw-3a4f9c21" {
		t.Fatalf("id %q", id)
	}
	withHost(t, "line-3-gw", nil)
	if id := defaultID(); id != "line-3-gw" {
		t.Fatalf("a real host name is the id: %q", id)
	}
	machineID = func() string { return "" }
	withHost(t, "gokrazy", nil)
	if id := defaultID(); id != "gokrazy" {
		t.Fatalf("no serial: %q", id)
	}
}

// TestEnvironmentDefaults: the container image's environment fills in the
// state dir, the broker's listener and, for a listener beyond loopback, its
// login; whatever the document says wins.
func TestEnvironmentDefaults(t *testing.T) {
	withPerm(t, filepath.Join(t.TempDir(), "no-perm"))
	t.Setenv(EnvStateDir, "/state")
	t.Setenv(EnvBrokerListen, "0.0.0.0:1883")
	t.Setenv(EnvBrokerUsername, "telemetry")
	t.Setenv(EnvBrokerPasswordFile, "/state/broker-password")
	for _, tt := range []struct {
		name, doc                          string
		stateDir, listen, user, pw, pwFile string
	}{
		{"empty document", `{}`, "/state", "0.0.0.0:1883", "telemetry", "", "/state/broker-password"},
		{"the document's state dir", `{"gateway": {"state_dir": "/data"}}`, "/data", "0.0.0.0:1883", "telemetry", "", "/state/broker-password"},
		{"a loopback listener needs no login", `{"broker": {"listen": "127.0.0.1:1884"}}`, "/state", "127.0.0.1:1884", "", "", ""},
		{"the document's login", `{"broker": {"username": "scada", "password": "pw"}}`, "/state", "0.0.0.0:1883", "scada", "pw", ""},
		{"the document's password file", `{"broker": {"username": "scada", "password_file": "/run/secrets/mqtt"}}`, "/state", "0.0.0.0:1883", "scada", "", "/run/secrets/mqtt"},
		{"unmanaged", `{"broker": {"managed": false, "url": "tcp://b:1883"}}`, "/state", "", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			b := c.Broker
			if c.Gateway.StateDir != tt.stateDir || b.Listen != tt.listen || b.Username != tt.user || b.Password != tt.pw || b.PasswordFile != tt.pwFile {
				t.Fatalf("state_dir %q, broker listen %q user %q password %q password_file %q; want %q, %q, %q, %q, %q",
					c.Gateway.StateDir, b.Listen, b.Username, b.Password, b.PasswordFile, tt.stateDir, tt.listen, tt.user, tt.pw, tt.pwFile)
			}
		})
	}
	// Without a password file in the environment there is no login to
	// fill in: a listener beyond loopback is refused as before.
	t.Setenv(EnvBrokerPasswordFile, "")
	if _, err := Parse([]byte(`{}`)); err == nil || !strings.Contains(err.Error(), "broker.listen: 0.0.0.0:1883 is reachable beyond this machine") {
		t.Fatalf("Parse without a login: %v", err)
	}
}
