package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadSettings: a good fleet file loads; each mistake is named by its
// key and says what to do; no password appears in an error.
func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(doc string) string {
		p := filepath.Join(dir, "fleet.json")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, err := LoadSettings(write(`{"broker": "ssl://mqtt.example.com:8883", "ca_file": "/etc/ca.pem", "username": "ops", "password": "s3cret-pw", "operator_key": "/k", "signer": "alice"}`))
	if err != nil || s.Broker != "ssl://mqtt.example.com:8883" || s.CAFile != "/etc/ca.pem" || s.Signer != "alice" {
		t.Fatalf("good file: %+v, %v", s, err)
	}
	for doc, want := range map[string]string{
		`{"broker": "ssl://mqtt.example.com:8883", "pasword": "s3cret-pw"}`: `pasword: unknown field (did you mean "password"?)`,
		`{}`:                                  `broker`,
		`{"broker": "mqtt.example.com:8883"}`: `broker: must be a URL with host and port`,
		`{"broker": "http://mqtt.example.com:8883"}`:                                              `scheme "http": use ssl://, wss://, tcp:// or ws://`,
		`{"broker": "tcp://mqtt.example.com:1883", "password": "s3cret-pw"}`:                      `is not encrypted`,
		`{"broker": "ssl://mqtt.example.com:8883", "tls": false}`:                                 `tls: is false but ssl:// is TLS`,
		`{"broker": "ssl://h:8883", "password": "s3cret-pw", "password_file": "/p"}`:              `password_file: set password or password_file, not both`,
		`{"broker": "ssl://h:8883", "cert_file": "/c.pem"}`:                                       `key_file: is required with cert_file`,
		`{"broker": "tcp://h:1883", "tls": false, "ca_file": "/ca.pem", "password": "s3cret-pw"}`: `ca_file: is for TLS, and the broker URL is not`,
	} {
		_, err := LoadSettings(write(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: the password is in the error: %v", doc, err)
		}
	}
	if _, err := LoadSettings(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "docs/fleet.md") {
		t.Errorf("a missing file: %v", err)
	}
	// fleet rpc needs the operator key.
	s, err = LoadSettings(write(`{"broker": "ssl://h:8883"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.operator(); err == nil || !strings.Contains(err.Error(), "operator_key and signer are needed") {
		t.Errorf("no operator key: %v", err)
	}
}
