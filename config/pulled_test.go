package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const bootDoc = `{
  "gateway": {"id": "gw-1", "state_dir": "/var/lib/osgate", "labels": {"site": "berlin", "hw": "pi4"}},
  "broker": {"binary": "/usr/sbin/mosquitto",
    "bridge": {"address": "cloud:8883", "ca_file": "/etc/osgate/cloud-ca.pem"}},
  "rpc": {"cert_file": "/etc/osgate/rpc.pem", "key_file": "/etc/osgate/rpc.key"},
  "remote": {"url": "https://fleet.example/{gateway}.json"},
  "connectors": [
    {"name": "field", "type": "test-config-any", "settings": {"brokers": [{"url": "ssl://b:8883", "ca_file": "/etc/osgate/bms-ca.pem"}]}}
  ]
}`

// TestPulledRefusesLocalOnlyKeys: a pulled document that sets what runs
// programs or names files and devices is refused, every key with its path.
func TestPulledRefusesLocalOnlyKeys(t *testing.T) {
	parse := ParsePulled([]byte(bootDoc))
	_, err := parse([]byte(`{
	  "gateway": {"id": "gw-1", "state_dir": "/etc/cron.d", "labels": {"site": "hamburg"}},
	  "broker": {"binary": "/tmp/x.sh", "username": "u", "password_file": "/etc/shadow", "bridge": {"address": "cloud:8883", "ca_file": "/etc/shadow", "cert_file": "/a", "key_file": "/b"}},
	  "rpc": {"cert_file": "/c", "key_file": "/d"},
	  "remote": {"url": "https://evil.example/x.json"},
	  "connectors": [
	    {"name": "field", "type": "test-config-any", "settings": {"brokers": [{"url": "ssl://b:8883", "ca_file": "/etc/other.pem"}]}},
	    {"name": "bus", "type": "test-config-any", "settings": {"port": "/dev/watchdog"}},
	    {"name": "bus2", "type": "test-config-any", "settings": {"port": "/dev/serial/../watchdog"},
	     "devices": [{"name": "d", "key_file": "/e"}]}
	  ]}`))
	want := []string{
		`broker.binary: runs a program on the gateway: only the local bootstrap file may set it, not a pulled configuration`,
		`broker.bridge.ca_file: names a file on the gateway: only the local bootstrap file may set it, not a pulled configuration`,
		`broker.bridge.cert_file: names a file on the gateway`,
		`broker.bridge.key_file: names a file on the gateway`,
		`broker.password_file: names a file on the gateway`,
		`connectors[0].settings.brokers[0].ca_file: names a file on the gateway`,
		`connectors[1].settings.port: names a device that is not a serial port: only the local bootstrap file may set it`,
		`connectors[2].devices[0].key_file: names a file on the gateway`,
		`connectors[2].settings.port: names a device that is not a serial port`,
		`gateway.labels: says what the installation is, which fleet selectors choose gateways by: only the local bootstrap file may set it`,
		`gateway.state_dir: is where the gateway writes its state`,
		`remote: says where the configuration comes from and which key signs it`,
		`rpc.cert_file: names a file on the gateway`,
		`rpc.key_file: names a file on the gateway`,
	}
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d: %s\nwant: %s…", i, lines[i], w)
		}
	}
}

// TestPulledTakesLocalOnlyKeysFromBootstrap: what a pulled document leaves
// out comes from the local file, and repeating the local file's value is
// fine; serial ports and board port names may be set.
func TestPulledTakesLocalOnlyKeysFromBootstrap(t *testing.T) {
	parse := ParsePulled([]byte(bootDoc))
	c, err := parse([]byte(`{
	  "gateway": {"id": "gw-1"},
	  "broker": {"bridge": {"address": "cloud2:8883", "username": "u", "password": "p"}},
	  "connectors": [
	    {"name": "field", "type": "test-config-any", "settings": {"brokers": [{"url": "ssl://b:8883", "ca_file": "/etc/osgate/bms-ca.pem"}]}},
	    {"name": "rtu", "type": "test-config-any", "settings": {"port": "/dev/ttyUSB0"}},
	    {"name": "rtu2", "type": "test-config-any", "settings": {"port": "/dev/serial/by-id/usb-FTDI-if00"}},
	    {"name": "rtu3", "type": "test-config-any", "settings": {"port": "rs485-0"}}
	  ]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.StateDir != "/var/lib/osgate" || c.Broker.Binary != "/usr/sbin/mosquitto" ||
		c.RPC.CertFile != "/etc/osgate/rpc.pem" || c.RPC.KeyFile != "/etc/osgate/rpc.key" {
		t.Errorf("local-only values not taken from the bootstrap: %+v %+v %+v", c.Gateway, c.Broker, c.RPC)
	}
	if b := c.Broker.Bridge; b == nil || b.Address != "cloud2:8883" || b.CAFile != "/etc/osgate/cloud-ca.pem" {
		t.Errorf("bridge: %+v", b)
	}
	if c.Remote != nil {
		t.Error("a pulled document got the remote block")
	}
	if c.Gateway.Labels["site"] != "berlin" || c.Gateway.Labels["hw"] != "pi4" || len(c.Gateway.Labels) != 2 {
		t.Errorf("labels not taken from the bootstrap: %v", c.Gateway.Labels)
	}
	// Repeating the local file's labels, or an empty object, is fine.
	for _, labels := range []string{`{"hw": "pi4", "site": "berlin"}`, `{}`} {
		if c, err := parse([]byte(`{"gateway": {"id": "gw-1", "labels": ` + labels + `}}`)); err != nil || c.Gateway.Labels["site"] != "berlin" {
			t.Errorf("labels %s: %v, %v", labels, err, c)
		}
	}
	// Without a bridge in the pulled document, none is made.
	c, err = parse([]byte(`{"gateway": {"id": "gw-1"}, "broker": {"managed": false, "url": "tcp://127.0.0.1:1883"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Bridge != nil || c.Broker.Binary != "" {
		t.Errorf("unmanaged broker got %+v", c.Broker)
	}
	// A pulled document that is not JSON is reported as Parse does.
	if _, err := parse([]byte(`{"gateway": `)); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Errorf("broken document: %v", err)
	}
}

// TestLocalPartsKeepLittle: of a bootstrap file with a thousand channels,
// ParsePulled keeps the local-only values and the connectors' names, not
// the channels (half a megabyte held for as long as the gateway runs).
func TestLocalPartsKeepLittle(t *testing.T) {
	var chans []string
	for i := range 1000 {
		chans = append(chans, fmt.Sprintf(`{"name": "r%d", "address": %d, "type": "uint16"}`, i, i))
	}
	boot, err := decodeTree([]byte(`{"gateway": {"state_dir": "/var/lib/osgate"}, "connectors": [
	  {"name": "plc", "type": "modbus", "settings": {"port": "/opt/odd", "ca_file": ""},
	   "devices": [{"name": "a", "channels": [` + strings.Join(chans, ",") + `]}, {"name": "b", "key_file": "/k"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(localParts(boot))
	want := `{"connectors":[{"devices":[null,{"key_file":"/k"}],"name":"plc","settings":{"port":"/opt/odd"}}],"gateway":{"state_dir":"/var/lib/osgate"}}`
	if string(got) != want {
		t.Errorf("localParts kept\n%s\nwant\n%s", got, want)
	}
}
