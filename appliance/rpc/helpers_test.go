package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
)

// The fixture's keys: testKey has scope admin, readKey read, writeKey
// write.
const (
	testKey  = "test-key-5b1d0c9e"
	readKey  = "read-key-77c1e0a2"
	writeKey = "write-key-1f9b3d64"
)

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a Server with test methods, served over loopback HTTP.
type fixture struct {
	srv    *Server
	http   *httptest.Server
	logs   *logBuffer
	status atomic.Value // health.Status served by /healthz
	notes  atomic.Int64 // calls of "note"
}

type addParams struct {
	A float64 `json:"a" strict:"required"`
	B float64 `json:"b" strict:"required"`
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	f := &fixture{logs: &logBuffer{}}
	f.status.Store(health.OK)
	if opts.Keys == nil {
		opts.Keys = []apikey.Key{
			{Name: "tester", SHA256: apikey.Hash(testKey), Scope: "admin"},
			{Name: "reader", SHA256: apikey.Hash(readKey)}, // no scope: read
			{Name: "writer", SHA256: apikey.Hash(writeKey), Scope: "write"},
		}
	}
	opts.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Health = func() health.Report {
		return health.Report{Status: f.status.Load().(health.Status), Live: true, Uptime: "1s"}
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Register("echo", scope.Read, func(ctx context.Context, params json.RawMessage) (any, error) {
		return map[string]any{"params": params, "caller": Caller(ctx)}, nil
	})
	srv.Register("add", scope.Read, func(_ context.Context, params json.RawMessage) (any, error) {
		var p addParams
		if err := Params(params, &p); err != nil {
			return nil, err
		}
		return p.A + p.B, nil
	})
	srv.Register("fail", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("meter-1 unreachable")
	})
	srv.Register("refuse", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		return nil, InvalidParams(`unknown device "meter-9"`)
	})
	srv.Register("boom", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		panic("handler bug")
	})
	srv.Register("unencodable", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		return make(chan int), nil
	})
	srv.Register("note", scope.Write, func(context.Context, json.RawMessage) (any, error) {
		f.notes.Add(1)
		return "noted", nil
	})
	srv.Register("set", scope.Write, func(_ context.Context, params json.RawMessage) (any, error) {
		return map[string]any{"set": params}, nil
	})
	srv.Register("reconfigure", scope.Admin, func(context.Context, json.RawMessage) (any, error) {
		return "reconfigured", nil
	})
	f.srv = srv
	f.http = httptest.NewServer(srv.Handler())
	t.Cleanup(f.http.Close)
	return f
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to path with the given headers ("" values are not set).
func (f *fixture) post(t testing.TB, method, path, contentType, auth string, body io.Reader) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// rpc posts a JSON-RPC body with the test key.
func (f *fixture) rpc(t testing.TB, body string) reply {
	t.Helper()
	return f.post(t, "POST", "/rpc", "application/json", "Bearer "+testKey, strings.NewReader(body))
}

// wireResponse is a response as it appears on the wire.
type wireResponse struct {
	JSONRPC string           `json:"jsonrpc"`
	Result  *json.RawMessage `json:"result"`
	Error   *Error           `json:"error"`
	ID      json.RawMessage  `json:"id"`
}

// one decodes a single response and checks its envelope.
func one(t testing.TB, b []byte) wireResponse {
	t.Helper()
	var r wireResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %q: %v", b, err)
	}
	checkEnvelope(t, r, b)
	return r
}

// checkEnvelope checks that raw is one response: jsonrpc "2.0", an id, and
// exactly one of result and error.
func checkEnvelope(t testing.TB, r wireResponse, raw []byte) {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatalf("response %s: %v", raw, err)
	}
	_, hasResult := members["result"]
	_, hasError := members["error"]
	_, hasID := members["id"]
	if r.JSONRPC != "2.0" || hasResult == hasError || (hasError && r.Error == nil) || !hasID || len(members) != 3 {
		t.Fatalf("not a JSON-RPC 2.0 response: %s", raw)
	}
}

// wantError checks a single error response.
func wantError(t testing.TB, b []byte, code int, id, msgPart string) *Error {
	t.Helper()
	r := one(t, b)
	if r.Error == nil || r.Error.Code != code || !strings.Contains(r.Error.Message, msgPart) || string(r.ID) != id {
		t.Fatalf("got %s; want error %d containing %q with id %s", b, code, msgPart, id)
	}
	return r.Error
}

// metric scrapes /metrics and returns the value of the sample named by
// series (name plus labels as printed, e.g. `x_total{a="b"}`), 0 if absent.
func (f *fixture) metric(t testing.TB, series string) float64 {
	t.Helper()
	rep := f.post(t, "GET", "/metrics", "", "", nil)
	if rep.status != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", rep.status)
	}
	sc := bufio.NewScanner(bytes.NewReader(rep.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %s: %v", sc.Text(), err)
			}
			return x
		}
	}
	return 0
}
