package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

const goodKey = "ingest-key-1"

// startIngest starts an ingest connector on a free port and returns its
// base URL and the Listen's cancel and result.
func startIngest(t *testing.T, name, extra string, devices []*core.Device, col *collector, scheme string) (string, context.CancelFunc, chan error) {
	t.Helper()
	port := testpeer.FreePort(t)
	settings := fmt.Sprintf(`{"ingest": {"listen": "127.0.0.1:%d", "api_keys": [{"name": "plant", "sha256": %q}]%s}}`, port, apikey.Hash(goodKey), extra)
	c := newConn(t, name, settings, devices)
	l, ok := c.(core.Listener)
	if !ok {
		t.Fatalf("an ingest connector is %T, not a Listener", c)
	}
	if _, isPoller := c.(core.Poller); isPoller {
		t.Fatal("an ingest connector must not be a Poller")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Listen(ctx, col.emit(ctx)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Listen did not return within 30s of cancellation")
		}
	})
	testpeer.WaitTCP(t, testpeer.Addr(port), 30*time.Second)
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), cancel, done
}

type answer struct {
	status int
	body   string
	header http.Header
}

func post(t *testing.T, client *http.Client, url, auth, ctype string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func TestIngest(t *testing.T) {
	col := newCollector()
	base, _, _ := startIngest(t, "ingest", `, "max_body": 4096`, nil, col, "http")
	c := &http.Client{Timeout: 60 * time.Second}
	bearer := "Bearer " + goodKey
	authBefore := mapping.Rejected("ingest", "auth")

	for _, tc := range []struct {
		name, path, auth, ctype, body string
		status                        int
		frag                          string
	}{
		{"accepted", "/ingest/meter-1", bearer, "application/json",
			`{"ts":"2026-11-24T13:41:00Z","voltage":230.1,"energy":1234.5,"relay":true}`, 202, `"accepted":3`},
		{"no key", "/ingest/meter-1", "", "", `{"v":1}`, 401, "no API key"},
		{"wrong key", "/ingest/meter-1", "Bearer not-the-key", "", `{"v":1}`, 401, "not accepted"},
		{"basic instead of bearer", "/ingest/meter-1", "Basic dXNlcjpwYXNz", "", `{"v":1}`, 401, "malformed Authorization"},
		{"malformed JSON", "/ingest/meter-1", bearer, "application/json", `{"v":1,`, 400, "not JSON"},
		{"syntax error with offset", "/ingest/meter-1", bearer, "", `{"v":tru}`, 400, "at byte"},
		{"no values", "/ingest/meter-1", bearer, "", `{}`, 422, "none of its channels"},
		{"not an object", "/ingest/meter-1", bearer, "", `[1,2]`, 202, `"accepted":2`},
		{"scalar body", "/ingest/meter-1", bearer, "", `5`, 400, "not an object or array"},
		{"unknown path", "/other/meter-1", bearer, "", `{"v":1}`, 404, "no mapping"},
		{"path too deep", "/ingest/a/b", bearer, "", `{"v":1}`, 404, "no mapping"},
		{"wrong content type", "/ingest/meter-1", bearer, "text/html", `{"v":1}`, 415, "Content-Type"},
		{"huge body", "/ingest/meter-1", bearer, "", `{"v":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "max_body"},
		{"huge body of unknown length", "/ingest/meter-1", bearer, "", "\x00chunked" + `{"v":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "max_body"},
		{"bad timestamp", "/ingest/meter-1", bearer, "", `{"ts":"noon","v":1}`, 400, "timestamp ts"},
	} {
		var body io.Reader = strings.NewReader(tc.body)
		if b, ok := strings.CutPrefix(tc.body, "\x00chunked"); ok {
			body = io.MultiReader(strings.NewReader(b)) // hides the length: sent chunked
		}
		a := post(t, c, base+tc.path, tc.auth, tc.ctype, body)
		if a.status != tc.status || !strings.Contains(a.body, tc.frag) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.name, a.status, strings.TrimSpace(a.body), tc.status, tc.frag)
		}
		if a.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer", tc.name)
		}
		if a.status >= 400 && !json.Valid([]byte(a.body)) {
			t.Errorf("%s: error body is not JSON: %s", tc.name, a.body)
		}
	}
	resp, err := c.Get(base + "/ingest/meter-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q, want 405 POST", resp.StatusCode, resp.Header.Get("Allow"))
	}

	want := "meter-1/0=1\nmeter-1/1=2\nmeter-1/energy=1234.5\nmeter-1/relay=true\nmeter-1/voltage=230.1"
	if got := keys(col.readings()); got != want {
		t.Errorf("readings:\n%s\nwant:\n%s", got, want)
	}
	for _, r := range col.readings() {
		if r.Channel == "voltage" && !r.Time.Equal(time.Date(2026, 11, 24, 13, 41, 0, 0, time.UTC)) {
			t.Errorf("voltage at %v, want the body's ts", r.Time)
		}
	}
	if got := mapping.Rejected("ingest", "auth") - authBefore; got != 3 {
		t.Errorf("auth rejects counted: %v, want 3", got)
	}
}

// TestIngestAcceptsOnlyAfterEmit holds the pipeline full and checks that
// the 202 comes only once emit returned, and that stopping osgate while a
// request waits answers 503.
func TestIngestAcceptsOnlyAfterEmit(t *testing.T) {
	col := newCollector()
	col.gate = make(chan struct{})
	base, cancel, done := startIngest(t, "ingest-bp", "", nil, col, "http")
	c := &http.Client{Timeout: 60 * time.Second}
	answers := make(chan answer, 2)
	go func() {
		answers <- post(t, c, base+"/ingest/m", "Bearer "+goodKey, "", strings.NewReader(`{"a":1,"b":2}`))
	}()
	col.waitHeld(t, 1)
	select {
	case a := <-answers:
		t.Fatalf("answered %d %s while emit was blocked", a.status, a.body)
	default:
	}
	col.gate <- struct{}{} // a
	col.waitHeld(t, 2)
	select {
	case a := <-answers:
		t.Fatalf("answered %d %s while the second reading was blocked", a.status, a.body)
	default:
	}
	col.gate <- struct{}{} // b
	select {
	case a := <-answers:
		if a.status != 202 || !strings.Contains(a.body, `"accepted":2`) {
			t.Fatalf("got %d %s, want 202 accepted 2", a.status, a.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer after emit returned")
	}

	// Stopping while a request is blocked in emit.
	go func() {
		answers <- post(t, c, base+"/ingest/m", "Bearer "+goodKey, "", strings.NewReader(`{"a":3}`))
	}()
	col.waitHeld(t, 3)
	cancel()
	select {
	case a := <-answers:
		if a.status != 503 || a.header.Get("Retry-After") == "" {
			t.Fatalf("got %d %s, want 503 with Retry-After", a.status, a.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer after stopping")
	}
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Listen = %v, want context.Canceled", err)
		}
		done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not return")
	}
}

// TestIngestTLSAndMappings serves over TLS with its own mapping paths and
// configured devices.
func TestIngestTLSAndMappings(t *testing.T) {
	ca, cert, key := writeCert(t, t.TempDir())
	col := newCollector()
	extra := fmt.Sprintf(`, "cert_file": %q, "key_file": %q, "mappings": [
		{"path": "/sites/{site}/{device}", "device": "{site}.{device}",
		 "channels": [{"name": "power", "path": "p[0]", "unit": "W", "type": "int"}, {"name": "state", "path": "s"}]},
		{"path": "/text/{device}/{channel}", "payload": "text", "channels": [{"name": "{channel}"}]}
	]`, cert, key)
	devices := []*core.Device{{Name: "boiler", Settings: []byte(`{"source": "north.b1"}`), Channels: []*core.Channel{
		{Name: "heat", Unit: "kW", Settings: []byte(`{"source": "power"}`)},
	}}}
	base, _, _ := startIngest(t, "ingest-tls", extra, devices, col, "https")

	pemBytes, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	bearer := "Bearer " + goodKey
	for _, tc := range []struct {
		path, ctype, body string
		status            int
	}{
		{"/sites/north/b1", "application/json", `{"p":[1500],"s":"on"}`, 202},
		{"/sites/south/b2", "application/json", `{"p":[7.5],"s":"off"}`, 202}, // 7.5 is not an int: a bad reading
		{"/text/b3/temp", "text/plain", "21.5", 202},
		{"/ingest/b1", "", `{"v":1}`, 404}, // the default path is gone
	} {
		a := post(t, c, base+tc.path, bearer, tc.ctype, bytes.NewBufferString(tc.body))
		if a.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.path, a.status, a.body, tc.status)
		}
	}
	want := "b3/temp=21.5\nboiler/heat=1500 kW\nboiler/state=on\n" +
		"south.b2/power=<nil> W bad: field p[0] number 7.5 is not a whole number that fits in 64 bits\nsouth.b2/state=off"
	if got := keys(col.readings()); got != want {
		t.Errorf("readings:\n%s\nwant:\n%s", got, want)
	}
	// A plain-HTTP client cannot talk to the TLS endpoint.
	plain := &http.Client{Timeout: 30 * time.Second}
	if resp, err := plain.Post(strings.Replace(base, "https", "http", 1)+"/sites/a/b", "application/json", strings.NewReader(`{}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP to the TLS endpoint got %d", resp.StatusCode)
		}
	}
}

func TestIngestListenErrors(t *testing.T) {
	port := testpeer.FreePort(t)
	occupied := &http.Server{Addr: testpeer.Addr(port)}
	go occupied.ListenAndServe()
	t.Cleanup(func() { occupied.Close() })
	testpeer.WaitTCP(t, testpeer.Addr(port), 30*time.Second)
	settings := fmt.Sprintf(`{"ingest": {"listen": %q, "api_keys": [{"name": "k", "sha256": %q}]}}`, testpeer.Addr(port), apikey.Hash("k"))
	l := newConn(t, "busy", settings, nil).(core.Listener)
	err := l.Listen(t.Context(), func(...core.Reading) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Listen on a taken port = %v", err)
	}
	settings = fmt.Sprintf(`{"ingest": {"listen": "127.0.0.1:0", "cert_file": "/nonexistent.pem", "key_file": "/nonexistent.key", "api_keys": [{"name": "k", "sha256": %q}]}}`, apikey.Hash("k"))
	l = newConn(t, "nocert", settings, nil).(core.Listener)
	err = l.Listen(t.Context(), func(...core.Reading) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "load cert_file and key_file") {
		t.Errorf("Listen without its certificate = %v", err)
	}
}
