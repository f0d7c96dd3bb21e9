package config

import (
	"strings"
	"testing"

	"github.com/osgate/osgate/internal/redact"
)

func TestRedacted(t *testing.T) {
	key := strings.Repeat("ab", 32)
	c, err := Parse([]byte(`{"broker": {"username": "u", "password": "local-secret",
	    "bridge": {"address": "c:1", "tls": false, "username": "cu", "password": "cloud-secret"}},
	  "rpc": {"api_keys": [{"name": "ops", "sha256": "` + key + `", "scope": "write"}],
	    "operator_keys": [{"name": "cloud", "public_key": "` + testPub + `", "scope": "admin"}]},
	  "connectors": [{"name": "bus", "type": "test-config-any",
	    "settings": {"port": "p", "password": "drv-secret", "tls": {"key_file": "/k.pem", "token": "tok"}, "empty_password": ""},
	    "devices": [{"name": "d", "network_key": "00112233", "channels": [{"name": "c", "register": 1, "scale": 2, "deadband": {}}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if r.Broker.Password != "***" || r.Broker.Bridge.Password != "***" || r.RPC.APIKeys[0].SHA256 != "***" {
		t.Fatalf("secrets shown: %+v %+v %+v", r.Broker, r.Broker.Bridge, r.RPC.APIKeys)
	}
	if r.Broker.Username != "u" || r.Broker.Bridge.Username != "cu" || r.RPC.APIKeys[0].Name != "ops" || r.RPC.APIKeys[0].Scope != "write" {
		t.Fatal("non-secrets were redacted")
	}
	// Operator keys are public keys: shown as they are.
	if len(r.RPC.OperatorKeys) != 1 || r.RPC.OperatorKeys[0] != c.RPC.OperatorKeys[0] {
		t.Fatalf("operator keys %+v", r.RPC.OperatorKeys)
	}
	if got, want := string(r.Connectors[0].Settings), `{"empty_password":"","password":"***","port":"p","tls":{"key_file":"/k.pem","token":"***"}}`; got != want {
		t.Fatalf("settings %s, want %s", got, want)
	}
	if got := string(r.Connectors[0].Devices[0].Driver); got != `{"network_key":"***"}` {
		t.Fatalf("device keys %s", got)
	}
	// The original is untouched, and the copy shares nothing it could change.
	if c.Broker.Password != "local-secret" || c.Broker.Bridge.Password != "cloud-secret" || c.RPC.APIKeys[0].SHA256 != key ||
		!strings.Contains(string(c.Connectors[0].Settings), "drv-secret") || !strings.Contains(string(c.Connectors[0].Devices[0].Driver), "00112233") {
		t.Fatal("Redacted changed the original")
	}
	*r.Connectors[0].Devices[0].Channels[0].Scale = 99
	*r.Connectors[0].Devices[0].Channels[0].Deadband.MaxSilence = 1
	*r.Export.QoS = 2
	r.Broker.Bridge.TopicsOut[0] = "x"
	*r.Connectors[0].Enabled = false
	r.RPC.OperatorKeys[0].Scope = "read"
	ch := c.Connectors[0].Devices[0].Channels[0]
	if *ch.Scale != 2 || *ch.Deadband.MaxSilence == 1 || *c.Export.QoS != 1 || c.Broker.Bridge.TopicsOut[0] != "telemetry/#" || !*c.Connectors[0].Enabled ||
		c.RPC.OperatorKeys[0].Scope != "admin" {
		t.Fatal("the redacted copy shares memory with the original")
	}
}

func TestSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "Password": true, "mqtt_passwd": true, "client_secret": true, "token": true,
		"api_key": true, "network_key": true, "s2_keys": true, "key": true,
		"key_file": false, "port": false, "username": false, "keyboard": false,
	} {
		if redact.SecretKey(k) != want {
			t.Errorf("SecretKey(%q) = %v", k, !want)
		}
	}
}

func TestRedactedUnparsableDriverJSON(t *testing.T) {
	c := &Config{Connectors: []Connector{{Name: "x", Settings: []byte(`{"password": "p"`)}}}
	if got := string(c.Redacted().Connectors[0].Settings); got != `"***"` {
		t.Fatalf("unparsable settings shown as %s", got)
	}
}

// TestRedactedHeadersAndURLs: configured headers other than harmless ones
// (Cookie above all), the query values and passwords of URLs, and the
// fleet URL's query are masked; names stay.
func TestRedactedHeadersAndURLs(t *testing.T) {
	c, err := Parse([]byte(`{
	  "remote": {"url": "https://fleet.example/{gateway}.json?X-Amz-Signature=sig-secret", "bearer_token": "fleet-secret"},
	  "connectors": [{"name": "web", "type": "test-config-any",
	    "settings": {"headers": {"Accept": "application/json", "Cookie": "session=cookie-secret", "X-Site": "north"}},
	    "devices": [{"name": "d", "url": "https://api.example/v1/state?token=query-secret&page=2"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if got, want := string(r.Connectors[0].Settings), `{"headers":{"Accept":"application/json","Cookie":"***","X-Site":"***"}}`; got != want {
		t.Errorf("settings %s, want %s", got, want)
	}
	if got, want := string(r.Connectors[0].Devices[0].Driver), `{"url":"https://api.example/v1/state?token=***&page=***"}`; got != want {
		t.Errorf("device %s, want %s", got, want)
	}
	if r.Remote.URL != "https://fleet.example/{gateway}.json?X-Amz-Signature=***" || r.Remote.BearerToken != "***" {
		t.Errorf("remote %+v", r.Remote)
	}
	secrets := c.Secrets()
	for _, s := range []string{"sig-secret", "fleet-secret", "session=cookie-secret", "north", "query-secret"} {
		if !strings.Contains(strings.Join(secrets, "\n"), s) {
			t.Errorf("Secrets lacks %q", s)
		}
	}
	if got := c.Scrub("GET failed: session=cookie-secret, token query-secret"); got != "GET failed: ***, token ***" {
		t.Errorf("Scrub: %q", got)
	}
}
