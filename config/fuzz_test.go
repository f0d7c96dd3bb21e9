package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/strict"
)

// FuzzParse: no document makes Parse panic; every problem has text; an
// accepted config encodes back to a document that parses to the same
// config, and builds every connector config and every transform chain.
func FuzzParse(f *testing.F) {
	f.Add(defaultJSON)
	f.Add([]byte(minimal))
	examples, _ := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{`, `[]`, `null`, `{"connectors": null}`, `{"connectors": [null]}`, `{} {}`,
		`{"gateway": {"id": "a/b"}, "export": {"topic": "{x}"}, "rpc": {"listen": ":"}}`,
		`{"broker": {"managed": false, "url": "%zz"}}`,
		`{"broker": {"bridge": {"address": "[::1]:1", "tls": false, "topics_out": ["#", "+/+", "a/#/"]}}}`,
		chans(`{"name": "c", "register": 1, "expr": "value ?? 1", "inverse": "value", "writable": true, "min": 1e308, "max": -1e308}`),
		chans(`{"name": "c", "register": 1, "deadband": {"absolute": 1e-300, "max_silence": "-0s"}}`),
		dev(`{"name": "d", "interval": "9223372036s"}`),
		`{"connectors": [{"name": "a", "type": "test-config-panic"}, {"name": "b", "type": "test-config-any", "settings": "x"}]}`,
		"{\"gateway\": {\"id\": \"\u0000\"}, \"_comment\": 1}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("config and error")
			}
			es, ok := err.(strict.Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error %T %v is not a non-empty strict.Errors", err, err)
			}
			for _, e := range es {
				if e.Msg == "" {
					t.Fatalf("problem at %q without text", e.Path)
				}
			}
			return
		}
		_ = c.Redacted()
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("encode an accepted config: %v", err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip differs: %s", b)
		}
		for i, cn := range c.Connectors {
			cc := c.ConnectorConfig(i, nil)
			if len(cc.Devices) != len(cn.Devices) {
				t.Fatal("device count differs")
			}
			for _, d := range cn.Devices {
				for _, ch := range d.Channels {
					if _, err := transform.New(ch.TransformSpec()); err != nil {
						t.Fatalf("Parse accepted a channel transform.New rejects: %v", err)
					}
				}
			}
		}
	})
}

// FuzzParsePulled: no pulled document makes ParsePulled panic; an accepted
// one has the bootstrap's state dir and binary, whatever it said.
func FuzzParsePulled(f *testing.F) {
	f.Add([]byte(minimal))
	for _, s := range []string{
		``, `{`, `null`, `{"gateway": null, "broker": 1}`, `{"gateway": "x"}`,
		`{"gateway": {"state_dir": "/etc"}, "broker": {"binary": "/bin/sh", "bridge": null}}`,
		`{"broker": {"managed": false, "url": "tcp://h:1"}, "rpc": {"cert_file": ""}}`,
		`{"connectors": [{"name": "a", "type": "test-config-any", "settings": {"x": [{"ca_file": "/a"}], "port": "/dev/tty/../../etc"}}]}`,
		`{"connectors": [{"name": 1}, null, [], {"name": "field", "settings": {"brokers": [{"ca_file": "/etc/osgate/bms-ca.pem"}]}}]}`,
	} {
		f.Add([]byte(s))
	}
	parse := ParsePulled([]byte(bootDoc))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data)
		if err != nil {
			if c != nil || err.Error() == "" {
				t.Fatalf("config %v with error %q", c, err)
			}
			return
		}
		if c.Gateway.StateDir != "/var/lib/osgate" || c.Broker.Managed != nil && *c.Broker.Managed && c.Broker.Binary != "/usr/sbin/mosquitto" {
			t.Fatalf("accepted with state_dir %q, binary %q", c.Gateway.StateDir, c.Broker.Binary)
		}
	})
}

// FuzzLocalParts: what ParsePulled keeps of the bootstrap file (localParts)
// decides every pulled document as the whole bootstrap tree would: the
// same refusals, or the same merged configuration.
func FuzzLocalParts(f *testing.F) {
	pulled := []string{
		minimal, `{}`, `{"gateway": {"id": "gw-1", "state_dir": "/var/lib/osgate"}}`,
		`{"connectors": [{"name": "field", "type": "test-config-any", "settings": {"brokers": [{"url": "ssl://b:8883", "ca_file": "/etc/osgate/bms-ca.pem"}]}}]}`,
		`{"connectors": [{"name": "field", "type": "test-config-any", "settings": {"brokers": [{"ca_file": "/other.pem"}]}}]}`,
		`{"connectors": [{"name": "bus", "type": "test-config-any", "settings": {"port": "/opt/x"}, "devices": [{"name": "d", "key_file": "/k"}]}]}`,
		`{"broker": {"bridge": {"address": "cloud:8883", "ca_file": "/etc/osgate/cloud-ca.pem"}}, "rpc": {"cert_file": "/etc/osgate/rpc.pem"}}`,
	}
	boots := []string{
		bootDoc, `{}`, `null`, `{"connectors": [null, {"name": 2}, {"name": "bus", "settings": {"port": "/opt/x"}, "devices": [{"name": "a"}, {"name": "d", "key_file": "/k"}]}]}`,
		`{"connectors": [{"name": "field", "settings": {"brokers": [{"ca_file": ""}, {"ca_file": "/a"}]}}, {"name": "field", "settings": {"port": "/dev/ttyS0"}}]}`,
	}
	for _, b := range boots {
		for _, p := range pulled {
			f.Add([]byte(b), []byte(p))
		}
	}
	f.Fuzz(func(t *testing.T, boot, doc []byte) {
		tree, err := decodeTree(boot)
		if err != nil {
			return
		}
		kept := localParts(tree)
		c1, err1 := parsePulled(tree, doc)
		c2, err2 := parsePulled(kept, doc)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("with the whole bootstrap: %v\nwith its local parts %v: %v", err1, kept, err2)
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("with the whole bootstrap: %+v\nwith its local parts %v: %+v", c1, kept, c2)
		}
	})
}
