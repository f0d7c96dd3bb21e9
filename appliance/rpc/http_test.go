package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/osgate/osgate/appliance/health"
)

const addCall = `{"jsonrpc":"2.0","method":"add","params":{"a":2,"b":3},"id":1}`

func TestAuthRefusals(t *testing.T) {
	f := newFixture(t, Options{})
	const wrongKey = "wrong-key-e41f77"
	for _, tc := range []struct {
		name, auth, reason, challenge string
	}{
		{"no key", "", "missing API key", `Bearer realm="osgate"`},
		{"wrong key", "Bearer " + wrongKey, "unknown API key", `Bearer realm="osgate", error="invalid_token"`},
		{"basic auth", "Basic " + wrongKey, "malformed Authorization header", `Bearer realm="osgate", error="invalid_request"`},
		{"bearer without key", "Bearer", "malformed Authorization header", `Bearer realm="osgate", error="invalid_request"`},
		{"the digest instead of the key", "Bearer 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", "unknown API key", `Bearer realm="osgate", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.metric(t, "osgate_rpc_auth_failures_total")
			notes := f.notes.Load()
			rep := f.post(t, "POST", "/rpc", "application/json", tc.auth, strings.NewReader(`{"jsonrpc":"2.0","method":"note","id":1}`))
			if rep.status != http.StatusUnauthorized {
				t.Fatalf("HTTP %d: %s; want 401", rep.status, rep.body)
			}
			if got := rep.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			wantError(t, rep.body, CodeUnauthorized, "null", tc.reason)
			if f.notes.Load() != notes {
				t.Error("the method ran without a valid key")
			}
			if after := f.metric(t, "osgate_rpc_auth_failures_total"); after != before+1 {
				t.Errorf("osgate_rpc_auth_failures_total went from %v to %v, want +1", before, after)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "reason=\""+tc.reason+"\"") || !strings.Contains(logs, "remote=127.0.0.1:") {
				t.Errorf("refusal not logged with reason and remote address:\n%s", logs)
			}
			if strings.Contains(logs, wrongKey) || strings.Contains(logs, testKey) {
				t.Errorf("a key appears in the log:\n%s", logs)
			}
		})
	}
}

func TestWrongHTTPMethodAndContentType(t *testing.T) {
	f := newFixture(t, Options{})
	rep := f.post(t, "GET", "/rpc", "", "Bearer "+testKey, nil)
	if rep.status != http.StatusMethodNotAllowed || rep.header.Get("Allow") != "POST" {
		t.Fatalf("GET /rpc: HTTP %d Allow %q; want 405 Allow POST", rep.status, rep.header.Get("Allow"))
	}
	wantError(t, rep.body, CodeInvalidRequest, "null", "use POST")

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "application/json; charset"} {
		rep := f.post(t, "POST", "/rpc", ct, "Bearer "+testKey, strings.NewReader(addCall))
		if rep.status != http.StatusUnsupportedMediaType {
			t.Errorf("content type %q: HTTP %d; want 415", ct, rep.status)
			continue
		}
		wantError(t, rep.body, CodeInvalidRequest, "null", "send application/json")
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		rep := f.post(t, "POST", "/rpc", ct, "Bearer "+testKey, strings.NewReader(addCall))
		if r := one(t, rep.body); rep.status != http.StatusOK || r.Error != nil {
			t.Errorf("content type %q: HTTP %d %s; want 200 and a result", ct, rep.status, rep.body)
		}
	}
}

// hideLength makes the HTTP client send a body chunked, without a
// Content-Length the server could refuse up front.
type hideLength struct{ io.Reader }

func TestTooLargeBody(t *testing.T) {
	f := newFixture(t, Options{})
	huge := bytes.Repeat([]byte(" "), 10<<20)
	copy(huge, `{"jsonrpc":"2.0","method":"note","params":{"pad":"`)
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"with Content-Length", bytes.NewReader(huge)},
		{"chunked", hideLength{bytes.NewReader(huge)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.metric(t, `osgate_rpc_requests_total{method="invalid",outcome="too_large"}`)
			rep := f.post(t, "POST", "/rpc", "application/json", "Bearer "+testKey, tc.body)
			if rep.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("HTTP %d: %.200s; want 413", rep.status, rep.body)
			}
			wantError(t, rep.body, CodeInvalidRequest, "null", "request too large: the limit is 1048576 bytes")
			if after := f.metric(t, `osgate_rpc_requests_total{method="invalid",outcome="too_large"}`); after != before+1 {
				t.Errorf("too_large went from %v to %v, want +1", before, after)
			}
			// The server is still up and answers the next call.
			if r := one(t, f.rpc(t, addCall).body); r.Error != nil || string(*r.Result) != "5" {
				t.Fatalf("call after the large body: %+v", r)
			}
		})
	}
	if f.notes.Load() != 0 {
		t.Errorf("a too large request ran")
	}
}

func TestMaxBodyOption(t *testing.T) {
	f := newFixture(t, Options{MaxBody: 64})
	if rep := f.rpc(t, addCall); rep.status != http.StatusOK {
		t.Fatalf("%d-byte call under a 64-byte limit: HTTP %d", len(addCall), rep.status)
	}
	body := `{"jsonrpc":"2.0","method":"add","params":{"a":2,"b":3,"_comment":"padding"},"id":1}`
	rep := f.rpc(t, body)
	if rep.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d-byte call: HTTP %d; want 413", len(body), rep.status)
	}
	wantError(t, rep.body, CodeInvalidRequest, "null", "the limit is 64 bytes")
	if _, err := New(Options{MaxBody: -1}); err == nil {
		t.Error("New accepted a negative MaxBody")
	}
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		status health.Status
		code   int
	}{
		{health.OK, http.StatusOK},
		{health.Degraded, http.StatusOK},
		{health.Unhealthy, http.StatusServiceUnavailable},
	} {
		f.status.Store(tc.status)
		rep := f.post(t, "GET", "/healthz", "", "", nil) // no key needed
		if rep.status != tc.code {
			t.Errorf("%s: HTTP %d, want %d", tc.status, rep.status, tc.code)
		}
		var got health.Report
		if err := json.Unmarshal(rep.body, &got); err != nil || got.Status != tc.status || rep.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: body %s (%v), content type %q", tc.status, rep.body, err, rep.header.Get("Content-Type"))
		}
	}
	if rep := f.post(t, "POST", "/healthz", "application/json", "", nil); rep.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: HTTP %d, want 405", rep.status)
	}
}

func TestHealthzWithoutModel(t *testing.T) {
	srv, err := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv}
	f.http = newHTTPServer(t, srv)
	if rep := f.post(t, "GET", "/healthz", "", "", nil); rep.status != http.StatusNotFound {
		t.Errorf("/healthz with no health model: HTTP %d, want 404", rep.status)
	}
	rep := f.post(t, "POST", "/rpc", "application/json", "Bearer "+testKey, strings.NewReader(addCall))
	if rep.status != http.StatusUnauthorized {
		t.Errorf("a server without keys answered HTTP %d, want 401", rep.status)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t, Options{})
	f.rpc(t, addCall)
	rep := f.post(t, "GET", "/metrics", "", "", nil) // no key needed
	if rep.status != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", rep.status)
	}
	for _, want := range []string{
		`osgate_rpc_requests_total{method="add",outcome="ok"}`,
		"osgate_export_queue_depth",
		"osgate_rpc_auth_failures_total",
		"# HELP osgate_rpc_requests_total JSON-RPC requests by method and outcome.\n# TYPE osgate_rpc_requests_total counter\n",
		"\ngo_goroutines ",
		"\ngo_memstats_heap_inuse_bytes ",
		"\nprocess_resident_memory_bytes ",
		"\nprocess_cpu_seconds_total ",
		"\nprocess_start_time_seconds ",
	} {
		if !bytes.Contains(rep.body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestUnknownPath(t *testing.T) {
	f := newFixture(t, Options{})
	if rep := f.post(t, "GET", "/admin", "", "Bearer "+testKey, nil); rep.status != http.StatusNotFound {
		t.Errorf("/admin: HTTP %d, want 404", rep.status)
	}
}
