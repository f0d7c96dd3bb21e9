package mqttrpc

import (
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
)

func TestParseEnvelope(t *testing.T) {
	good := []struct {
		name, payload, key, request string
		expires                     time.Time
	}{
		{"object", `{"key":"k1","expires":"2026-11-25T14:00:00Z","request":{"jsonrpc":"2.0","method":"m","id":1}}`,
			"k1", `{"jsonrpc":"2.0","method":"m","id":1}`, time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)},
		{"batch, any order, spaces, offset", " {\"request\" : [ {\"a\":1} ] ,\n\"expires\":\"2026-11-25T15:00:00.5+01:00\", \"key\":\"k2\"} ",
			"k2", `[ {"a":1} ]`, time.Date(2026, 11, 25, 14, 0, 0, 5e8, time.UTC)},
		// Strings are kept raw: the request reaches rpc.Server.Handle byte for byte.
		{"request kept verbatim", `{"key":"k","expires":"2026-11-25T14:00:00Z","request":{"method":"\u00e9","n":1.50}}`,
			"k", `{"method":"\u00e9","n":1.50}`, time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)},
	}
	for _, c := range good {
		env, err := parseEnvelope([]byte(c.payload))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if env.key != c.key || string(env.request) != c.request || !env.expires.Equal(c.expires) {
			t.Errorf("%s: got key %q request %s expires %s", c.name, env.key, env.request, env.expires)
		}
	}

	bad := []struct {
		payload string
		code    int
		want    string
	}{
		{``, rpc.CodeParseError, "not valid JSON"},
		{`{"key":"k",`, rpc.CodeParseError, "not valid JSON"},
		{`{"key":"k"} {}`, rpc.CodeParseError, "not valid JSON"},
		{`null`, rpc.CodeInvalidRequest, "must be a JSON object"},
		{`"key"`, rpc.CodeInvalidRequest, "must be a JSON object"},
		{`{}`, rpc.CodeInvalidRequest, `missing member "key", "expires", "request"`},
		{`{"key":"k","expires":"2026-11-25T14:00:00Z","request":"x"}`, rpc.CodeInvalidRequest, `"request" must be a JSON-RPC`},
		{`{"key":"k","expires":"2026-11-25T14:00:00Z","request":null}`, rpc.CodeInvalidRequest, `"request" must be a JSON-RPC`},
		{`{"key":null,"expires":"2026-11-25T14:00:00Z","request":{}}`, rpc.CodeInvalidRequest, `"key" must be a string`},
		{`{"key":"k","expires":1764079200,"request":{}}`, rpc.CodeInvalidRequest, `"expires" must be an RFC 3339`},
		{`{"key":"k","expires":"2026-11-25 14:00","request":{}}`, rpc.CodeInvalidRequest, `not an RFC 3339`},
		{`{"key":"k","expires":"2026-11-25T14:00:00Z","request":{},"Key":"x"}`, rpc.CodeInvalidRequest, `unknown member "Key"`},
		{`{"key":"k","expires":"2026-11-25T14:00:00Z","expires":"2026-11-25T14:00:00Z","request":{}}`, rpc.CodeInvalidRequest, `"expires" given twice`},
	}
	for _, c := range bad {
		_, err := parseEnvelope([]byte(c.payload))
		if err == nil || err.Code != c.code || !strings.Contains(err.Message, c.want) {
			t.Errorf("%q: got %v, want %d containing %q", c.payload, err, c.code, c.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	const pre = "rpc/gw/request/"
	for _, id := range []string{"1", "a-b_c.d", "3f2b8c1e-6a4d-4c1b-9a7e-1d2c3b4a5f60", strings.Repeat("z", 64)} {
		if got, ok := requestID(pre+id, pre); !ok || got != id {
			t.Errorf("%q: got %q %v", id, got, ok)
		}
	}
	for _, topic := range []string{pre, pre + "a b", pre + "a/b", pre + "ä", pre + strings.Repeat("z", 65), "rpc/other/request/1", "x"} {
		if got, ok := requestID(topic, pre); ok {
			t.Errorf("%q: accepted as %q", topic, got)
		}
	}
}

func TestCheckKeyFormat(t *testing.T) {
	for key, want := range map[string]string{
		"":                        "missing API key",
		"a b":                     "malformed API key",
		"tab\t":                   "malformed API key",
		"ünïcode":                 "malformed API key",
		strings.Repeat("k", 1025): "malformed API key",
	} {
		reason, ok := checkKeyFormat(key)
		if ok || reason != want || strings.Contains(reason, key) && key != "" {
			t.Errorf("%.20q: got %q %v, want %q", key, reason, ok, want)
		}
	}
	if _, ok := checkKeyFormat(strings.Repeat("k", 1024)); !ok {
		t.Errorf("a 1024-character key is refused")
	}
}

func TestBridgeTopics(t *testing.T) {
	in, out := BridgeTopics("gw-1")
	if in != "rpc/gw-1/request/#" || out != "rpc/gw-1/response/#" {
		t.Fatalf("got %q %q", in, out)
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	payload := envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseEnvelope(payload); err != nil {
			b.Fatal(err)
		}
	}
}
