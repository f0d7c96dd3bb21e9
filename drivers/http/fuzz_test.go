package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/apikey"
)

// FuzzSettings: any settings document gives a connector or an error, never
// a panic.
func FuzzSettings(f *testing.F) {
	f.Add(`{"ingest":{"api_keys":[{"name":"k","sha256":"` + apikey.Hash("k") + `"}]}}`)
	f.Add(`{"ingest":{"listen":":1","api_keys":[],"mappings":[{"path":"/a/{device}","channels":[{"each":"v"}]}]}}`)
	f.Add(`{"headers":{"X":"y"},"auth":{"type":"basic","username":"u"},"max_body":10}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, settings string) {
		c, err := New(core.ConnectorConfig{Name: "fz", Settings: []byte(settings), Devices: []*core.Device{
			{Name: "d", Settings: []byte(`{"url":"http://h/x"}`), Channels: []*core.Channel{{Name: "c", Settings: []byte(`{"path":"v"}`)}}},
		}})
		if err == nil {
			c.Close()
		}
	})
}

// FuzzIngestBody sends arbitrary bodies and paths through the ingest
// handler: the answer is 202 with readings, or a 4xx, never a panic or a
// 5xx.
func FuzzIngestBody(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"ts":"2026-01-01T00:00:00Z","a":[1,{"b":2}]}`, `[`, `null`, `"x"`, "\x00", `{"a":1}{`} {
		f.Add("/ingest/d", s)
	}
	f.Add("/sites/s/d", `{"p":[1],"s":"on"}`)
	f.Add("/ingest/", `{"a":1}`)
	c, err := New(core.ConnectorConfig{Name: "fzi", Settings: []byte(`{"ingest":{"api_keys":[{"name":"k","sha256":"` + apikey.Hash("k") + `"}],"max_body":4096,
		"mappings":[{"path":"/ingest/{device}","time":{"path":"ts"},"channels":[{"each":""}]},
		            {"path":"/sites/{site}/{device}","device":"{site}.{device}","channels":[{"name":"p","path":"p[0]","type":"int"},{"name":"s","path":"s"}]}]}}`)})
	if err != nil {
		f.Fatal(err)
	}
	in := c.(*ingest)
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# \t\r\n") {
			return
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return // not a path a client could send
		}
		n := 0
		h := &handler{in: in, emit: core.PerReading(func(r core.Reading) error {
			if r.Device == "" || r.Channel == "" {
				t.Fatalf("reading without a name: %+v", r)
			}
			n++
			return nil
		})}
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "http://x"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(w, req) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("handler hung")
		}
		switch {
		case w.Code == http.StatusAccepted:
			if n == 0 {
				t.Fatalf("202 without readings for %q", body)
			}
		case w.Code >= 400 && w.Code < 500:
			if n != 0 {
				t.Fatalf("%d after emitting %d readings", w.Code, n)
			}
		default:
			t.Fatalf("status %d for %q %q: %s", w.Code, path, body, w.Body)
		}
	})
}
