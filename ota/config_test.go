package ota

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	pub, _ := testKey(t)
	dir := t.TempDir()
	write := func(doc string) string {
		p := filepath.Join(dir, "ota.json")
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := base64.StdEncoding.EncodeToString(pub)
	c, err := LoadConfig(write(`{"url":"https://fleet/ota/stable/manifest.json","public_key":"` + key + `",
		"channel":"stable","confirm_after":"2m","window":"02:00-04:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfirmAfter != 2*time.Minute || c.Channel != "stable" || c.Window != "02:00-04:00" {
		t.Fatalf("config %+v", c)
	}
	for doc, want := range map[string]string{
		`{"url":"u"}`:                    "public_key: is required",
		`{"url":"u","public_key":"abc"}`: "public_key: public key",
		`{"url":"u","public_key":"` + key + `","window":"night"}`:               "maintenance window",
		`{"url":"u","public_key":"` + key + `","confirm_afterr":"1m"}`:          `did you mean "confirm_after"`,
		`{"url":"https://f/m.json","public_key":"` + key + `","tls":false}`:     "tls: is false but https:// is TLS",
		`{"url":"https://f/m.json","public_key":"` + key + `","cert_file":"c"}`: "key_file: is required with cert_file",
	} {
		if _, err := LoadConfig(write(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", doc, err, want)
		}
	}
	// The release server's TLS settings are those of every client.
	tc, err := LoadConfig(write(`{"url":"https://fleet/m.json","public_key":"` + key + `","ca_file":"/nonexistent/ca.pem","server_name":"fleet.example","insecure":true}`))
	if err != nil || tc.CAFile != "/nonexistent/ca.pem" || tc.ServerName != "fleet.example" || !tc.Insecure {
		t.Fatalf("TLS keys: %v %+v", err, tc)
	}
	tc.PasswordFile = write("pw")
	if _, err := tc.Agent("v1.0.0", "gw-1", dir, nil, nil); err == nil || !strings.Contains(err.Error(), "read ca_file") {
		t.Fatalf("missing ca_file: err = %v", err)
	}
	// The agent refuses to start without the device's own password.
	c.PasswordFile = filepath.Join(dir, "missing-gokr-pw.txt")
	if _, err := c.Agent("v1.0.0", "gw-1", dir, nil, nil); err == nil || !strings.Contains(err.Error(), "update password") {
		t.Fatalf("no password file: err = %v", err)
	}
}

// FuzzWindow: the maintenance window parser never panics, and an accepted
// window opens within a day.
func FuzzWindow(f *testing.F) {
	for _, s := range []string{"02:00-04:00", "23:30-00:15", "0:0-24:0", "", "02:00", "-1:00-02:00", "02:00-04:00x"} {
		f.Add(s)
	}
	at := time.Date(2026, 11, 25, 5, 7, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseWindow(s)
		if err != nil {
			return
		}
		if d := w.until(at); d < 0 || d > 24*time.Hour {
			t.Fatalf("%q: opens in %s", s, d)
		}
	})
}
