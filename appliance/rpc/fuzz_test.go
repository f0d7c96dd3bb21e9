package rpc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/osgate/osgate/internal/scope"
)

// FuzzHandle feeds arbitrary bodies to the request decoder and dispatcher.
// Handle must never panic, and its answer must be JSON-RPC 2.0: one response
// object or a non-empty array of them, or nothing, and nothing only for
// valid JSON (a notification or a batch of them).
func FuzzHandle(f *testing.F) {
	seeds, err := filepath.Glob("testdata/requests/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed corpus in testdata/requests: %v", err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	srv, err := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	srv.Register("echo", scope.Read, func(_ context.Context, p json.RawMessage) (any, error) { return p, nil })
	srv.Register("add", scope.Read, func(_ context.Context, p json.RawMessage) (any, error) {
		var a addParams
		if err := Params(p, &a); err != nil {
			return nil, err
		}
		return a.A + a.B, nil
	})
	srv.Register("list", scope.Read, func(_ context.Context, p json.RawMessage) (any, error) {
		var xs []int
		if err := Params(p, &xs); err != nil {
			return nil, err
		}
		return len(xs), nil
	})
	srv.Register("boom", scope.Read, func(context.Context, json.RawMessage) (any, error) { panic("fuzz") })
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := srv.Handle(WithCaller(context.Background(), "fuzz", scope.Admin), body)
		if len(resp) == 0 {
			if !json.Valid(body) {
				t.Fatalf("no response to invalid JSON %q", body)
			}
			return
		}
		if !json.Valid(resp) || !utf8.Valid(resp) {
			t.Fatalf("response is not JSON in UTF-8: %q", resp)
		}
		var batch []json.RawMessage
		if first(resp) == '[' && first(body) != '[' {
			t.Fatalf("a batch response to a single request: %q", resp)
		}
		if first(resp) == '[' {
			if err := json.Unmarshal(resp, &batch); err != nil || len(batch) == 0 {
				t.Fatalf("bad batch response %q: %v", resp, err)
			}
		} else {
			batch = []json.RawMessage{resp}
		}
		for _, raw := range batch {
			var r wireResponse
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("response %q: %v", raw, err)
			}
			checkEnvelope(t, r, raw)
			if !validID(r.ID) {
				t.Fatalf("response id %s is not a string, number or null", r.ID)
			}
			if r.Error != nil && (r.Error.Code > -32000 || r.Error.Code < -32768 || r.Error.Message == "") {
				t.Fatalf("error outside the JSON-RPC range or without message: %s", raw)
			}
		}
	})
}
