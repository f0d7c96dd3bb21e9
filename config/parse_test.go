package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// minimal is a valid document with one test connector; cases patch it.
const minimal = `{
  "gateway": {"id": "gw-1", "state_dir": "/tmp/osgate-test"},
  "connectors": [
    {"name": "bus", "type": "test-config-xyz", "settings": {"port": "/dev/ttyUSB0"},
     "devices": [
       {"name": "meter-1", "unit_id": 3, "channels": [
         {"name": "voltage", "register": 0, "unit": "V", "scale": 0.1}
       ]}
     ]}
  ]
}`

func TestParseMinimal(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Connectors[0].Devices[0].Channels[0]; got.Name != "voltage" || *got.Scale != 0.1 || string(got.Driver) != `{"register":0}` {
		t.Fatalf("channel %+v", got)
	}
	if got := string(c.Connectors[0].Devices[0].Driver); got != `{"unit_id":3}` {
		t.Fatalf("device driver keys %s", got)
	}
}

// testPub is an ed25519 public key (base64), for rpc.operator_keys.
const testPub = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every line of the error, in order
	}{
		{"not JSON", `{"gateway": `, []string{"invalid JSON at line 1, column 13 (byte 12): unexpected end of input"}},
		{"empty", ``, []string{"invalid JSON: empty document"}},
		{"not an object", `[1]`, []string{"must be an object, not an array"}},
		{
			"decode errors all at once",
			`{"gatway": {}, "export": {"qos": "1"}, "connectors": [{"type": "test-config-xyz", "settings": {"port": "p"},
			  "devices": [{"name": "d", "channels": [{"name": "c", "register": 1, "scale": "x"}]}]}]}`,
			[]string{
				`connectors[0].devices[0].channels[0].scale: must be a number, not a string`,
				`connectors[0].name: is required`,
				`export.qos: must be an integer, not a string`,
				`gatway: unknown field (did you mean "gateway"?)`,
			},
		},
		{
			"unknown connector type",
			`{"connectors": [{"name": "a", "type": "test-config-xyz", "settings": {"port": "p"}}, {"name": "b", "type": "nope"}]}`,
			[]string{`connectors[1].type: unknown connector type "nope" (known: ` + strings.Join(core.Types(), ", ") + `)`},
		},
		{
			"driver errors under the connector",
			`{"connectors": [{"name": "a", "type": "test-config-xyz", "settings": {"prot": "p"},
			  "devices": [{"name": "d", "unit_id": 300, "channels": [{"name": "c"}]}]}]}`,
			[]string{
				`connectors[0].devices[0].channels[0].register: is required`,
				`connectors[0].devices[0].unit_id: must be from 0 to 247, not 300`,
				`connectors[0].settings.port: is required`,
				`connectors[0].settings.prot: unknown field (did you mean "port"?)`,
			},
		},
		{
			"disabled connectors are validated",
			`{"connectors": [{"name": "a", "type": "test-config-xyz", "enabled": false}]}`,
			[]string{`connectors[0].settings.port: is required`},
		},
		{
			"a panicking driver is an error",
			`{"connectors": [{"name": "a", "type": "test-config-panic"}]}`,
			[]string{`connectors[0]: driver test-config-panic panicked while checking its configuration (a bug; please report it): a driver bug`},
		},
		{
			"names",
			conn(`{"name": "a", "type": "test-config-xyz", "settings": {"port": "p"}, "devices": [
			  {"name": "m/1"}, {"name": ""}, {"name": "d", "channels": [
			    {"name": "x", "register": 1}, {"name": "x", "register": 2}, {"name": "y", "rename": "x", "register": 3}, {"name": "", "register": 4}]}]},
			 {"name": "a", "type": "test-config-xyz", "settings": {"port": "p"}, "devices": [{"name": "d"}, {"name": "e+"}]}`),
			[]string{
				`connectors[0].devices[0].name: must not contain "/", "+" or "#" (it is a topic level): "m/1"`,
				`connectors[0].devices[1].name: must not be empty (it is a topic level)`,
				`connectors[0].devices[2].channels[1].name: "x" is also the name of channels[0] of this device`,
				`connectors[0].devices[2].channels[2].rename: exports "x", as channels[0] of this device does; exported channel names must be unique per device`,
				`connectors[0].devices[2].channels[3].name: must not be empty`,
				`connectors[1].devices[0].name: device "d" is also defined at connectors[0].devices[2]; device names are topic levels and must be unique in the whole config`,
				`connectors[1].devices[1].name: must not contain "/", "+" or "#" (it is a topic level): "e+"`,
				`connectors[1].name: "a" is also the name of connectors[0]; connector names must be unique`,
			},
		},
		{
			"timing",
			dev(`{"name": "a", "interval": "-1s"}, {"name": "b", "interval": "1s", "timeout": "2s"}, {"name": "c", "timeout": "-5ms"}, {"name": "d", "interval": "0.5"}`),
			[]string{
				`connectors[0].devices[0].interval: must be a positive duration like "10s", not -1s`,
				`connectors[0].devices[1].timeout: 2s is longer than the interval 1s: a poll must end before the next one is due`,
				`connectors[0].devices[2].timeout: must be a positive duration like "5s", not -5ms`,
				`connectors[0].devices[3].interval: must be a duration like "5s" or "250ms": "0.5" is not one`,
			},
		},
		{
			"transforms",
			chans(`{"name": "a", "register": 1, "min": 5, "max": 1},
			  {"name": "b", "register": 1, "deadband": {"absolute": -1, "percent": -2, "max_silence": "-1s"}},
			  {"name": "c", "register": 1, "deadband": {"absolute": 1, "percent": 2}},
			  {"name": "d", "register": 1, "expr": "value *", "inverse": "valeu"},
			  {"name": "e", "register": 1, "inverse": "value"},
			  {"name": "f", "register": 1, "writable": true, "expr": "value * 2"},
			  {"name": "g", "register": 1, "writable": true, "scale": 0},
			  {"name": "h", "register": 1, "writable": true, "expr": "value * 2", "inverse": "value / 2", "scale": 2, "deadband": {}},
			  {"name": "i", "register": 1, "decimals": 16},
			  {"name": "j", "register": 1, "decimals": -1},
			  {"name": "k", "register": 1, "decimals": 1.5}`),
			[]string{
				`connectors[0].devices[0].channels[0].min: 5 is greater than max 1: every reading would be dropped`,
				`connectors[0].devices[0].channels[1].deadband.absolute: must not be negative`,
				`connectors[0].devices[0].channels[1].deadband.max_silence: must not be negative ("0s": report only on change)`,
				`connectors[0].devices[0].channels[1].deadband.percent: must not be negative`,
				`connectors[0].devices[0].channels[2].deadband: set absolute or percent, not both`,
				`connectors[0].devices[0].channels[3].expr: does not compile: unexpected token EOF (1:7)`,
				`connectors[0].devices[0].channels[3].inverse: does not compile: unknown name valeu (1:1)`,
				`connectors[0].devices[0].channels[4].inverse: is only used with expr (scale and offset invert themselves)`,
				`connectors[0].devices[0].channels[5].inverse: is required on a writable channel with expr: osgate must turn a written value back into the device's value`,
				`connectors[0].devices[0].channels[6].scale: must not be 0 on a writable channel: a written value cannot be scaled back`,
				`connectors[0].devices[0].channels[8].decimals: must be from 0 to 15 decimal places, not 16`,
				`connectors[0].devices[0].channels[9].decimals: must be from 0 to 15 decimal places, not -1`,
				`connectors[0].devices[0].channels[10].decimals: must be a whole number, not 1.5`,
			},
		},
		{
			"managed broker",
			`{"broker": {"url": "tcp://x:1", "listen": "1883", "autosave_interval": "-1s", "password": "p", "max_queued_messages": -1, "max_queued_bytes": -1}}`,
			[]string{
				`broker.autosave_interval: must be a positive duration like "5s", not -1s`,
				`broker.listen: must be host:port, e.g. "127.0.0.1:1883": "1883"`,
				`broker.max_queued_bytes: must not be negative (0: sized from the free space of the state dir)`,
				`broker.max_queued_messages: must not be negative (0: sized from the free space of the state dir)`,
				`broker.password: needs broker.username`,
				`broker.url: must not be set when the broker is managed (osgate runs mosquitto on broker.listen); set broker.managed to false to use a broker someone else runs`,
			},
		},
		{
			"unmanaged broker needs url",
			`{"broker": {"managed": false, "listen": "127.0.0.1:1", "bridge": {"address": "cloud:8883", "tls": false}}}`,
			[]string{
				`broker.bridge: needs a managed broker: osgate writes the bridge into the mosquitto.conf it manages (broker.managed is false)`,
				`broker.listen: is only used when the broker is managed (broker.managed is false)`,
				`broker.url: is required when broker.managed is false (e.g. "tcp://127.0.0.1:1883")`,
			},
		},
		{"unmanaged url scheme", `{"broker": {"managed": false, "url": "mqtt://x:1883"}}`, []string{`broker.url: must start with tcp://, ssl://, ws:// or wss://: "mqtt://x:1883"`}},
		{"url scheme typo", `{"broker": {"managed": false, "url": "tpc://x:1883"}}`, []string{`broker.url: must start with tcp://, ssl://, ws:// or wss://: "tpc://x:1883" (did you mean "tcp"?)`}},
		{"rpc off typo", `{"rpc": {"listen": "of"}}`, []string{`rpc.listen: must be host:port or "off", not "of" (did you mean "off"?)`}},
		{"unmanaged url port", `{"broker": {"managed": false, "url": "tcp://x"}}`, []string{`broker.url: needs a host and a port, e.g. "tcp://127.0.0.1:1883": "tcp://x"`}},
		{
			"bridge",
			`{"broker": {"bridge": {"address": "cloud", "tls": false, "cert_file": "c.pem", "insecure": true, "password": "x", "qos": 3, "topics_out": ["a/#/b", "a+"], "topics_in": [""]}}}`,
			[]string{
				`broker.bridge.address: must be host:port, e.g. "127.0.0.1:1883": "cloud"`,
				`broker.bridge.cert_file: is for TLS, and tls is false`,
				`broker.bridge.insecure: is for TLS, and tls is false`,
				`broker.bridge.key_file: is required with cert_file`,
				`broker.bridge.password: needs username`,
				`broker.bridge.qos: must be 0, 1 or 2, not 3`,
				`broker.bridge.topics_in[0]: must not be empty`,
				`broker.bridge.topics_out[0]: is not a valid MQTT filter: "#" must be the whole last level: "a/#/b"`,
				`broker.bridge.topics_out[1]: is not a valid MQTT filter: "+" must be a whole level: "a+"`,
			},
		},
		{
			"bridge state and keepalive",
			`{"gateway": {"id": "gw-1"}, "broker": {"bridge": {"address": "c:1", "tls": false, "keepalive": "2s", "topics_out": ["telemetry/#", "#", "status/+/bridge", "status/gw-1/devices/#"]}}}`,
			[]string{
				`broker.bridge.keepalive: must be from "5s" to "18h12m15s" (Mosquitto's limits), not 2s`,
				`broker.bridge.topics_out[1]: "#" also matches status/gw-1/bridge, where the bridge itself reports its link to the cloud; a copy sent from here would overwrite the cloud's live state with a stale one: use narrower filters (status messages are always sent)`,
				`broker.bridge.topics_out[2]: "status/+/bridge" also matches status/gw-1/bridge, where the bridge itself reports its link to the cloud; a copy sent from here would overwrite the cloud's live state with a stale one: use narrower filters (status messages are always sent)`,
			},
		},
		{"bridge address required", `{"broker": {"bridge": {"tls": false}}}`, []string{`broker.bridge.address: is required`}},
		{"bridge carries nothing", `{"broker": {"bridge": {"address": "c:1", "tls": false, "topics_out": []}}}`, []string{`broker.bridge.topics_out: must not be empty when topics_in is empty too: the bridge would carry nothing`}},
		{"topic without device", `{"export": {"topic": "telemetry/{gateway}"}}`, []string{`export.topic: must contain {device}: each device is exported on its own topic (e.g. "telemetry/{gateway}/{device}")`}},
		{"topic placeholder", `{"export": {"topic": "t/{gw}/{device}"}}`, []string{`export.topic: knows only the placeholders {gateway} and {device}: "t/{gw}/{device}"`}},
		{"topic wildcard", `{"export": {"topic": "t/#/{device}"}}`, []string{`export.topic: must not contain the wildcards "+" or "#": "t/#/{device}"`}},
		{"topic empty level", `{"export": {"topic": "t//{device}"}}`, []string{`export.topic: must not have empty topic levels: "t//{device}"`}},
		{"export numbers", `{"export": {"qos": -1, "queue_limit": -5}}`, []string{`export.qos: must be 0, 1 or 2, not -1`, `export.queue_limit: must be a positive number of messages, not -5`}},
		{
			"rpc",
			`{"rpc": {"listen": "localhost", "cert_file": "", "key_file": "k", "max_body": -1, "api_keys": [{"name": "a", "sha256": "abc"}, {"name": "a", "sha256": "` + strings.Repeat("g", 64) + `"}, {"name": "", "sha256": "` + strings.Repeat("A", 64) + `"}]}}`,
			[]string{
				`rpc.api_keys[0].sha256: must be the SHA-256 of the key as 64 hex digits (printf %s KEY | sha256sum), not 3 characters`,
				`rpc.api_keys[1].name: "a" is also the name of rpc.api_keys[0]`,
				`rpc.api_keys[1].sha256: must be the SHA-256 of the key as 64 hex digits (printf %s KEY | sha256sum), not 64 characters`,
				`rpc.api_keys[2].name: must not be empty: it names the key in logs`,
				`rpc.cert_file: is required with key_file`,
				`rpc.listen: must be host:port, e.g. "127.0.0.1:1883": "localhost"`,
				`rpc.max_body: must be a positive number of bytes, not -1`,
			},
		},
		{"rpc port", `{"rpc": {"listen": "127.0.0.1:70000"}}`, []string{`rpc.listen: needs a port from 1 to 65535: "127.0.0.1:70000"`}},
		{
			"rpc scopes and operator keys",
			`{"rpc": {"api_keys": [{"name": "a", "sha256": "` + strings.Repeat("a", 64) + `", "scope": "root"}],
			  "operator_keys": [{"name": "ops", "public_key": "MCowBQYDK2VwAyEA"}, {"name": "ops", "public_key": "` + testPub + `", "scope": "Admin"},
			    {"name": "", "public_key": "` + testPub + `"}]}}`,
			[]string{
				`rpc.api_keys[0].scope: "root" is not a scope: use "read", "write" or "admin"`,
				`rpc.operator_keys[0].public_key: must be an ed25519 public key in base64 (osgate rpc keygen prints it): public key must be 32 bytes, not 12`,
				`rpc.operator_keys[1].name: "ops" is also the name of rpc.operator_keys[0]`,
				`rpc.operator_keys[1].scope: "Admin" is not a scope: use "read", "write" or "admin"`,
				`rpc.operator_keys[2].name: must not be empty: it names the signer in logs`,
				`rpc.operator_keys[2].public_key: is the same key as rpc.operator_keys[1]`,
			},
		},
		{
			"broker users and anonymous readers",
			`{"broker": {"listen": "0.0.0.0:1883", "username": "osgate-rpc", "password": "p", "anonymous_read": true}}`,
			[]string{
				`broker.anonymous_read: needs a loopback listener (broker.listen is "0.0.0.0:1883"): clients beyond loopback log in with broker.username`,
				`broker.username: "osgate-rpc" is the user of osgate's own clients of the managed broker; choose another name`,
			},
		},
		{"anonymous readers need a managed broker", `{"broker": {"managed": false, "url": "tcp://x:1", "anonymous_read": true}}`,
			[]string{`broker.anonymous_read: is only used when the broker is managed (broker.managed is false)`}},
		{"gateway id", `{"gateway": {"id": "a/b"}}`, []string{`gateway.id: must not contain "/", "+" or "#" (it is a topic level): "a/b"`}},
		{"gateway limits", `{"gateway": {"config_grace": "-1s", "disk_warn_bytes": -1}}`, []string{
			`gateway.config_grace: must not be negative`,
			`gateway.disk_warn_bytes: must not be negative (0: the default, a tenth of the file system, at most 128 MiB)`}},
		{"status interval", `{"gateway": {"status_interval": "10ms"}}`, []string{
			`gateway.status_interval: must be at least 1s (0: the default, 5m)`}},
		{"labels", `{"gateway": {"labels": {"Site": "x", "version": "v1", "ok": "a b", "hw": "", "cust": "a=b"}}}`, []string{
			`gateway.labels.Site: a label name is a lower-case letter, then up to 31 letters, digits, "_", "." or "-"`,
			`gateway.labels.cust: a label value is 1 to 64 letters, digits or "_.:/@+-" (no spaces, "," or "=": selectors use them), starting with a letter or digit`,
			`gateway.labels.hw: a label value is 1 to 64 letters, digits or "_.:/@+-" (no spaces, "," or "=": selectors use them), starting with a letter or digit`,
			`gateway.labels.ok: a label value is 1 to 64 letters, digits or "_.:/@+-" (no spaces, "," or "=": selectors use them), starting with a letter or digit`,
			`gateway.labels.version: is a field of the status document (id, state, version, health, ota, config, seen, cohort): fleet selectors could not tell them apart; choose another name`,
		}},
		// A bridge without TLS says so; the fix is TLS or saying it.
		{"bridge without TLS", `{"broker": {"bridge": {"address": "cloud.example:1883", "username": "gw", "password": "pw"}}}`, []string{
			`broker.bridge.ca_file: is required for TLS (the CA of the cloud broker); without TLS the bridge password and the cloud RPC cross the network in clear text: set "tls": false to do that on purpose`,
		}},
		{"bridge server_name", `{"broker": {"bridge": {"address": "c:8883", "ca_file": "/ca.pem", "server_name": "cloud.example"}}}`, []string{
			`broker.bridge.server_name: cannot be set for the bridge: Mosquitto checks the cloud broker's certificate against the host of address; put that name in address, or set insecure to skip the check (the certificate must still be signed by ca_file)`,
		}},
		{"bridge tls true without ca_file", `{"broker": {"bridge": {"address": "c:8883", "tls": true}}}`, []string{
			`broker.bridge.ca_file: is required with "tls": true (the CA of the cloud broker)`,
		}},
		{"bridge tls false with TLS files", `{"broker": {"bridge": {"address": "c:8883", "tls": false, "ca_file": "/ca.pem"}}}`, []string{
			`broker.bridge.ca_file: is for TLS, and tls is false`,
		}},
		// What the broker would refuse at start is refused here.
		{"bridge conf injection", `{"gateway": {"id": "gw 1"}, "broker": {"bridge": {"address": "c:8883", "ca_file": "/ca.pem\naddress evil:1", "client_id": "a b", "username": "u\nconnection evil", "password": "p\r\nx", "topics_out": ["a b/#"], "topics_in": ["c\u0000"]}}}`, []string{
			`broker.bridge.ca_file: must not contain control characters such as line breaks: "/ca.pem\naddress evil:1"`,
			`broker.bridge.client_id: must not contain spaces or control characters: "a b"`,
			`broker.bridge.password: must not contain control characters such as line breaks`,
			`broker.bridge.topics_in[0]: must not contain spaces or control characters (it is one word of mosquitto.conf): "c\x00"`,
			`broker.bridge.topics_out[0]: must not contain spaces or control characters (it is one word of mosquitto.conf): "a b/#"`,
			`broker.bridge.username: must not contain control characters such as line breaks: "u\nconnection evil"`,
			`gateway.id: must not contain spaces or control characters: "gw 1"`,
		}},
		{"bridge empty password", `{"broker": {"bridge": {"address": "c:8883", "tls": false, "username": "gw"}}}`, []string{
			`broker.bridge.password: is required with username (Mosquitto's bridge cannot send an empty password)`,
		}},
		{"broker user", `{"broker": {"username": "a:b", "password": "x\ny"}}`, []string{
			`broker.password: must not contain control characters such as line breaks`,
			`broker.username: must not contain ":" (it separates user and password in Mosquitto's password file)`,
		}},
		{"open listener without password", `{"broker": {"listen": "0.0.0.0:1883"}}`, []string{
			`broker.listen: 0.0.0.0:1883 is reachable beyond this machine: set broker.username and broker.password, or listen on 127.0.0.1`,
		}},
		{"open listener with a user but no password", `{"broker": {"listen": "0.0.0.0:1883", "username": "u"}}`, []string{
			`broker.password: is required with a listener beyond this machine (broker.listen is "0.0.0.0:1883"): set it, or broker.password_file`,
		}},
		{"password file", `{"broker": {"password_file": "/p", "username": "", "bridge": {"address": "c:1", "tls": false}}}`, []string{
			`broker.password_file: needs broker.username`,
		}},
		{"password file and password", `{"broker": {"listen": "0.0.0.0:1883", "username": "u", "password": "p", "password_file": "/p"}}`, []string{
			`broker.password_file: and broker.password are two passwords of one user: give one of them`,
		}},
		{"password file of an unmanaged broker", `{"broker": {"managed": false, "url": "tcp://b:1883", "username": "u", "password_file": "/p"}}`, []string{
			`broker.password_file: is only used when the broker is managed (broker.managed is false): give broker.password`,
		}},
		{"ports conflict", `{"broker": {"listen": "127.0.0.1:8080"}}`, []string{
			`rpc.listen: port 8080 is also taken by broker.listen (127.0.0.1:8080): two listeners cannot share it`,
		}},
		{"ports conflict on every address", `{"broker": {"listen": "0.0.0.0:9000", "username": "u", "password": "p"}, "rpc": {"listen": "127.0.0.1:9000"}}`, []string{
			`rpc.listen: port 9000 is also taken by broker.listen (0.0.0.0:9000): two listeners cannot share it`,
		}},
		{"settings not an object", `{"connectors": [{"name": "a", "type": "test-config-xyz", "settings": [1]}]}`, []string{
			`connectors[0].settings: must be an object`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			if c != nil {
				t.Fatal("Parse returned a config with an error")
			}
			if _, ok := err.(strict.Errors); !ok {
				t.Fatalf("error is a %T, want strict.Errors", err)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Fatalf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// conn wraps connector objects into a document.
func conn(connectors string) string { return `{"connectors": [` + connectors + `]}` }

// dev wraps device objects into a document with one test connector.
func dev(devices string) string {
	return conn(`{"name": "bus", "type": "test-config-xyz", "settings": {"port": "p"}, "devices": [` + devices + `]}`)
}

// chans wraps channel objects into a document with one device.
func chans(channels string) string { return dev(`{"name": "d", "channels": [` + channels + `]}`) }

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(good, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(good); err != nil || c.Gateway.ID != "gw-1" {
		t.Fatalf("Load: %v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rpc": {"listen": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if want := "config " + bad + ":\nrpc.listen: must be a string, not a number"; err == nil || err.Error() != want {
		t.Fatalf("Load error %q, want %q", err, want)
	}
	var es strict.Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("Load error does not wrap strict.Errors: %#v", err)
	}
	_, err = Load(filepath.Join(dir, "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "missing.json") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func TestDurationsAreStrings(t *testing.T) {
	c, err := Parse([]byte(dev(`{"name": "d", "interval": "250ms"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Connectors[0].Devices[0]; d.Interval != 250*time.Millisecond || d.Timeout != 250*time.Millisecond {
		t.Fatalf("interval %v timeout %v", d.Interval, d.Timeout)
	}
}
