package http

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// restServer is a real HTTP server over loopback with the endpoints the
// poll tests GET.
func restServer(t *testing.T, tlsOn bool) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /weather", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "station" || p != "pa55" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"time":1764072000,"main":{"temp":280.4,"humidity":81},"wind":[{"speed":3.6}],"ok":true}`)
	})
	mux.HandleFunc("GET /api/v1/state", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-9" || r.Header.Get("X-Site") != "north" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, `{"power":"1500","count":9007199254740993}`)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(60 * time.Second):
		}
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database on fire", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /notjson", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html>oops</html>`)
	})
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"v":"%s"}`, strings.Repeat("x", 2<<20))
	})
	var srv *httptest.Server
	if tlsOn {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	t.Cleanup(srv.Close)
	return srv
}

func dev(name, settings string, chans ...*core.Channel) *core.Device {
	return &core.Device{Name: name, Interval: time.Second, Timeout: 10 * time.Second, Settings: []byte(settings), Channels: chans}
}

func ch(name, unit, settings string) *core.Channel {
	return &core.Channel{Name: name, Unit: unit, Settings: []byte(settings)}
}

func poll(t *testing.T, p core.Poller, d *core.Device, timeout time.Duration) ([]core.Reading, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Poll(ctx, d)
}

func TestPoll(t *testing.T) {
	srv := restServer(t, false)
	devices := []*core.Device{
		dev("weather", fmt.Sprintf(`{"url": %q, "auth": {"type": "basic", "username": "station", "password": "pa55"}, "time": {"path": "time", "format": "unix"}}`, srv.URL+"/weather"),
			ch("temperature", "K", `{"path": "main.temp"}`),
			ch("humidity", "%", `{"path": "main.humidity", "type": "int"}`),
			ch("wind", "m/s", `{"path": "wind[0].speed"}`),
			ch("ok", "", `{"path": "ok"}`),
			ch("pressure", "hPa", `{"path": "main.pressure"}`)),
		dev("inverter", fmt.Sprintf(`{"url": %q, "headers": {"X-Site": "north"}, "auth": {"type": "bearer", "token": "tok-9"}}`, srv.URL+"/api/v1/state"),
			ch("power", "W", `{"path": "power", "type": "float"}`),
			ch("count", "", `{"path": "count", "type": "int"}`)),
		dev("noauth", fmt.Sprintf(`{"url": %q}`, srv.URL+"/weather"), ch("t", "", `{"path": "main.temp"}`)),
		dev("slow", fmt.Sprintf(`{"url": %q}`, srv.URL+"/slow"), ch("v", "", `{"path": "v"}`)),
		dev("broken", fmt.Sprintf(`{"url": %q}`, srv.URL+"/broken"), ch("v", "", `{"path": "v"}`)),
		dev("notjson", fmt.Sprintf(`{"url": %q}`, srv.URL+"/notjson?secret=1"), ch("v", "", `{"path": "v"}`)),
		dev("huge", fmt.Sprintf(`{"url": %q}`, srv.URL+"/huge"), ch("v", "", `{"path": "v"}`)),
		dev("refused", `{"url": "http://127.0.0.1:1/x"}`, ch("v", "", `{"path": "v"}`)),
	}
	c := newConn(t, "rest", `{"headers": {"X-Gateway": "gw-1"}}`, devices)
	p, ok := c.(core.Poller)
	if !ok {
		t.Fatalf("a poll connector is %T, not a Poller", c)
	}
	if _, isListener := c.(core.Listener); isListener {
		t.Fatal("a poll connector must not be a Listener")
	}
	defer c.Close()

	rs, err := poll(t, p, devices[0], 30*time.Second)
	if err != nil {
		t.Fatalf("weather: %v", err)
	}
	want := "weather/humidity=81 %\nweather/ok=true\nweather/pressure=<nil> hPa bad: field main.pressure is not in the payload\n" +
		"weather/temperature=280.4 K\nweather/wind=3.6 m/s"
	if got := keys(rs); got != want {
		t.Errorf("weather:\n%s\nwant:\n%s", got, want)
	}
	for _, r := range rs {
		if !r.Time.Equal(time.Unix(1764072000, 0)) {
			t.Errorf("%s at %v, want the response's time", key(r), r.Time)
		}
	}
	rs, err = poll(t, p, devices[1], 30*time.Second)
	if err != nil {
		t.Fatalf("inverter: %v", err)
	}
	if got, want := keys(rs), "inverter/count=9007199254740993\ninverter/power=1500 W"; got != want {
		t.Errorf("inverter:\n%s\nwant:\n%s", got, want)
	}
	if _, ok := rs[0].Value.(float64); rs[0].Channel == "power" && !ok {
		t.Errorf("power is %T, want float64", rs[0].Value)
	}

	for _, tc := range []struct {
		dev     int
		timeout time.Duration
		frag    string
	}{
		{2, 30 * time.Second, "401 Unauthorized: who are you"},
		{3, 300 * time.Millisecond, "no complete answer in time"},
		{4, 30 * time.Second, "500 Internal Server Error: database on fire"},
		{5, 30 * time.Second, "not JSON"},
		{6, 30 * time.Second, "larger than max_body"},
		{7, 30 * time.Second, "connection refused"},
	} {
		start := time.Now()
		rs, err := poll(t, p, devices[tc.dev], tc.timeout)
		name := devices[tc.dev].Name
		if err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%s: %v (%d readings), want an error containing %q", name, err, len(rs), tc.frag)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the query string: %v", name, err)
		}
		// A timed-out poll returns soon after its deadline, not when the
		// server gives up (60s).
		if took := time.Since(start); took > tc.timeout+20*time.Second {
			t.Errorf("%s: took %s with a %s deadline", name, took, tc.timeout)
		}
	}
	if _, err := p.Poll(t.Context(), dev("stranger", `{}`)); err == nil {
		t.Error("polling a device that is not configured succeeded")
	}
}

// TestPollHTTPS polls a TLS server whose certificate the connector trusts
// through ca_file, and fails without it.
func TestPollHTTPS(t *testing.T) {
	srv := restServer(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	d := dev("inverter", fmt.Sprintf(`{"url": %q, "headers": {"X-Site": "north"}, "auth": {"type": "bearer", "token": "tok-9"}}`, srv.URL+"/api/v1/state"),
		ch("power", "W", `{"path": "power", "type": "float"}`))
	trusted := newConn(t, "https", fmt.Sprintf(`{"ca_file": %q}`, caFile), []*core.Device{d}).(core.Poller)
	rs, err := poll(t, trusted, d, 30*time.Second)
	if err != nil || keys(rs) != "inverter/power=1500 W" {
		t.Errorf("with ca_file: %v %s", err, keys(rs))
	}
	untrusted := newConn(t, "https2", `{}`, []*core.Device{d}).(core.Poller)
	if _, err := poll(t, untrusted, d, 30*time.Second); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without ca_file: %v, want a certificate error", err)
	}
	insecure := newConn(t, "https3", `{"insecure": true}`, []*core.Device{d}).(core.Poller)
	if _, err := poll(t, insecure, d, 30*time.Second); err != nil {
		t.Errorf("insecure: %v", err)
	}
	missing := newConn(t, "https4", `{"ca_file": "/nonexistent/ca.pem"}`, []*core.Device{d}).(core.Poller)
	if _, err := poll(t, missing, d, 30*time.Second); err == nil || !strings.Contains(err.Error(), "read ca_file") {
		t.Errorf("missing ca_file: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings string
		devices  []*core.Device
		frags    []string
	}{
		{`{"headers": {"Bad Header": "x", "Authorization": "Bearer x"}, "auth": {"type": "digest"}, "max_body": -1}`,
			[]*core.Device{
				dev("a", `{"url": "ftp://x/y", "auth": {"type": "bearer"}}`, ch("v", "", `{}`)),
				dev("b", `{"url": "http://u:p@h/x", "time": {"path": "t", "format": "weekday"}}`, ch("v", "", `{"path": "a..b", "type": "decimal"}`)),
				dev("c", `{}`),
				dev("a", `{"url": "http://h/x"}`, ch("{x}", "", `{"path": "v"}`)),
			},
			[]string{
				`settings.auth.type: must be "basic" or "bearer", not "digest"`,
				`settings.headers["Authorization"]: set credentials with auth`,
				`settings.headers["Bad Header"]: is not a valid header name`,
				"settings.max_body: must be from 1 to 67108864 bytes",
				`devices[0].url: "ftp://x/y" must be http:// or https://`,
				"devices[0].auth.token: is required for bearer auth",
				"devices[1].url: must not carry credentials",
				"devices[1].time: format \"weekday\"",
				`devices[1].channels[0].path: path "a..b": a key is expected`,
				"devices[1].channels[0].type: must be one of auto",
				"devices[2].url: is required",
				"devices[2].channels: must list at least one channel",
				`devices[3].name: device "a" appears twice`,
				`devices[3].channels[0].name: "{x}": a polled channel's name cannot contain`,
			}},
		{`{"ingest": {"listen": "nohost", "api_keys": [], "cert_file": "c.pem", "mappings": [{"path": "ingest/{d}", "channels": [{"name": "v"}]}, {"path": "/a/{device}", "channels": [], "x": 1}]}, "auth": {"type": "basic", "username": "u"}}`,
			[]*core.Device{dev("d", `{"url": "http://h/x"}`)},
			[]string{
				`settings.ingest.listen: "nohost" is not HOST:PORT`,
				"settings.ingest.api_keys: must list at least one key",
				"settings.ingest.key_file: cert_file and key_file go together",
				`settings.ingest.mappings[0].path: "ingest/{d}" must start with "/"`,
				"settings.ingest.mappings[1].channels: must list at least one channel",
				"settings.ingest.mappings[1].x: unknown field",
				"settings.auth: is for polling; this connector ingests",
				"devices[0].url: unknown field",
			}},
		{`{"ingest": {"api_keys": [{"name": "k", "sha256": "abc"}]}}`, nil,
			[]string{"settings.ingest.api_keys[0].sha256: must be 64 hex digits"}},
	} {
		_, err := New(core.ConnectorConfig{Name: "bad", Settings: []byte(tc.settings), Devices: tc.devices})
		if err == nil {
			t.Errorf("%s: accepted", tc.settings)
			continue
		}
		for _, f := range tc.frags {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("error lacks %q:\n%v", f, err)
			}
		}
	}
}
