package mqttrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/scope"
)

// fuzzNow is the Responder's clock in FuzzEnvelope: the seeds' expiry
// (2026-11-25T14:00:00Z) lies ahead of it, within the hour.
var fuzzNow = time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC)

// FuzzEnvelope feeds arbitrary payloads to the envelope parser and to the
// whole check of a request message: neither may panic, every refusal is a
// JSON-RPC error response with a known code, nothing runs without a valid
// signature, and no answer ever repeats an API key of the old envelope.
func FuzzEnvelope(f *testing.F) {
	req := `{"jsonrpc":"2.0","method":"gateway.status","id":1}`
	exp := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	for _, seed := range [][]byte{
		ops.sign("f", exp, req),
		ops.sign("f", exp, `[`+req+`,{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":2}]`),
		ops.sign("f", exp, `{"jsonrpc":"2.0","method":"device.write","params":{"device":"meter-1","channel":"relay","value":1},"id":3}`),
		reader.sign("f", exp, `{"jsonrpc":"2.0","method":"device.write","params":{},"id":3}`),
		intruder.sign("f", exp, req),
		ops.sign("other-id", exp, req),
		[]byte(`{"key":"old-bearer-key-1234","expires":"2026-11-25T14:00:00Z","request":` + req + `}`),
		[]byte(`{"signer":"","expires":"2026-11-25T14:00:00Z","request":{},"signature":"x"}`),
		[]byte(`{"signer":"k","expires":"2026-11-25T14:00:00Z","request":"x","signature":"x"}`),
		[]byte(`{"signer":"k","signer":"k","expires":"x","request":{},"signature":""}`),
		[]byte(`{"signer":"k","expires":"2026-11-25T14:00:00Z","request":{},"signature":"x","extra":1}`),
		[]byte(`{"signer":"k"}`),
		[]byte(`[]`), []byte(`null`), []byte(`{`), []byte(`{}`), []byte(``),
		[]byte(`{"signer":"\u0000","expires":"2026-11-25T14:00:00Z","request":[],"signature":"\u0000"}`),
		[]byte(strings.Repeat(`[`, 300) + strings.Repeat(`]`, 300)),
	} {
		f.Add(seed)
	}
	m := newMethods(f, gw)
	r, err := New(Options{URL: "tcp://127.0.0.1:1", GatewayID: gw, Operators: testOperators(), Server: m.srv, StateDir: f.TempDir(),
		MaxBody: 1 << 16, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	r.now = func() time.Time { return fuzzNow }
	f.Cleanup(func() { r.ids.close() })

	f.Fuzz(func(t *testing.T, payload []byte) {
		env, perr := parseEnvelope(payload)
		if perr == nil {
			if c := first(env.request); c != '{' && c != '[' {
				t.Fatalf("accepted a request that is neither an object nor an array: %q", env.request)
			}
			if !json.Valid(env.request) || env.expires.IsZero() || env.signer == "" || env.signature == "" {
				t.Fatalf("accepted envelope %+v", env)
			}
		} else if perr.Code != rpc.CodeParseError && perr.Code != rpc.CodeInvalidRequest && perr.Code != rpc.CodeUnauthorized {
			t.Fatalf("envelope error code %d", perr.Code)
		}
		writes := m.writes.Load()
		id, resp := r.handle(context.Background(), message{topic: r.reqTopic + "f", payload: payload})
		if id != "f" {
			t.Fatalf("id %q", id)
		}
		if m.writes.Load() != writes {
			op, known := r.operators[env.signer]
			if perr != nil || !known || verify(op.pub, gw, "f", env) != nil || !op.scope.Allows(scope.Write) {
				t.Fatalf("device.write ran for a message without a valid signature by a write key: %q", payload)
			}
		}
		if resp == nil {
			return // a duplicate, or a notification
		}
		if !json.Valid(resp) {
			t.Fatalf("response is not JSON: %q", resp)
		}
		var old struct{ Key string }
		if json.Unmarshal(payload, &old) == nil && len(old.Key) >= 8 && bytes.Contains(resp, []byte(old.Key)) {
			t.Fatalf("the response repeats the API key: %s", resp)
		}
	})
}

// FuzzJournal feeds arbitrary bytes to the id journal's parser: it never
// panics, keeps only well-formed live lines, and what it keeps formats
// back to lines it reads the same.
func FuzzJournal(f *testing.F) {
	now := int64(1_800_000_000)
	f.Add([]byte(formatLine("a", seen{exp: now + 60, sum: sumOf(1)})))
	f.Add([]byte(formatLine("b-1.x_y", seen{exp: now - 60, sum: sumOf(2)}) + "garbage\n"))
	f.Add([]byte("1800000060 torn 00"))
	f.Add([]byte("\n\n1800000060  a 00000000000000000000000000000000\n"))
	f.Add([]byte("99999999999999999999 a 00000000000000000000000000000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		live, bad := parseJournal(data, now)
		if bad < 0 || len(live) > bytes.Count(data, []byte{'\n'}) {
			t.Fatalf("%d live from %d lines, %d bad", len(live), bytes.Count(data, []byte{'\n'}), bad)
		}
		var out strings.Builder
		for id, s := range live {
			if !validID(id) || s.exp <= now {
				t.Fatalf("kept %q %+v", id, s)
			}
			out.WriteString(formatLine(id, s))
		}
		again, bad2 := parseJournal([]byte(out.String()), now)
		if bad2 != 0 || len(again) != len(live) {
			t.Fatalf("round trip: %d of %d, %d bad", len(again), len(live), bad2)
		}
		for id, s := range live {
			if again[id] != s {
				t.Fatalf("round trip of %q: %+v != %+v", id, again[id], s)
			}
		}
	})
}
