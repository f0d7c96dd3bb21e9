package mqttrpc

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
)

func TestParseEnvelope(t *testing.T) {
	const tail = `,"signature":"c2ln"}`
	good := []struct {
		name, payload, signer, expires, request string
		at                                      time.Time
	}{
		{"object", `{"signer":"s1","expires":"2026-11-25T14:00:00Z","request":{"jsonrpc":"2.0","method":"m","id":1}` + tail,
			"s1", "2026-11-25T14:00:00Z", `{"jsonrpc":"2.0","method":"m","id":1}`, time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)},
		{"batch, any order, spaces, offset", " {\"request\" : [ {\"a\":1} ] ,\n\"signature\":\"c2ln\",\"expires\":\"2026-11-25T15:00:00.5+01:00\", \"signer\":\"s2\"} ",
			"s2", "2026-11-25T15:00:00.5+01:00", `[ {"a":1} ]`, time.Date(2026, 11, 25, 14, 0, 0, 5e8, time.UTC)},
		// Kept raw: the request is verified and reaches rpc.Server.Handle byte for byte.
		{"request kept verbatim", `{"signer":"s","expires":"2026-11-25T14:00:00Z","request":{"method":"\u00e9","n":1.50}` + tail,
			"s", "2026-11-25T14:00:00Z", `{"method":"\u00e9","n":1.50}`, time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)},
	}
	for _, c := range good {
		env, err := parseEnvelope([]byte(c.payload))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if env.signer != c.signer || string(env.request) != c.request || env.expiresText != c.expires || !env.expires.Equal(c.at) || env.signature != "c2ln" {
			t.Errorf("%s: got %+v", c.name, env)
		}
	}

	const exp = `"expires":"2026-11-25T14:00:00Z"`
	bad := []struct {
		payload string
		code    int
		want    string
	}{
		{``, rpc.CodeParseError, "not valid JSON"},
		{`{"signer":"k",`, rpc.CodeParseError, "not valid JSON"},
		{`{"signer":"k"} {}`, rpc.CodeParseError, "not valid JSON"},
		{`null`, rpc.CodeInvalidRequest, "must be a JSON object"},
		{`"signer"`, rpc.CodeInvalidRequest, "must be a JSON object"},
		{`{}`, rpc.CodeInvalidRequest, `missing member "signer", "expires", "request", "signature"`},
		{`{"signer":"k",` + exp + `,"request":"x"` + tail, rpc.CodeInvalidRequest, `"request" must be a JSON-RPC`},
		{`{"signer":"k",` + exp + `,"request":null` + tail, rpc.CodeInvalidRequest, `"request" must be a JSON-RPC`},
		{`{"signer":null,` + exp + `,"request":{}` + tail, rpc.CodeInvalidRequest, `"signer" must be the name`},
		{`{"signer":"",` + exp + `,"request":{}` + tail, rpc.CodeInvalidRequest, `"signer" must be the name`},
		{`{"signer":"` + strings.Repeat("s", 129) + `",` + exp + `,"request":{}` + tail, rpc.CodeInvalidRequest, `"signer" must be the name`},
		{`{"signer":"k","expires":1764079200,"request":{}` + tail, rpc.CodeInvalidRequest, `"expires" must be an RFC 3339`},
		{`{"signer":"k","expires":"2026-11-25 14:00","request":{}` + tail, rpc.CodeInvalidRequest, `not an RFC 3339`},
		{`{"signer":"k",` + exp + `,"request":{},"signature":7}`, rpc.CodeInvalidRequest, `"signature" must be the base64`},
		{`{"signer":"k",` + exp + `,"request":{},"Signer":"x"` + tail, rpc.CodeInvalidRequest, `unknown member "Signer"`},
		{`{"signer":"k",` + exp + `,` + exp + `,"request":{}` + tail, rpc.CodeInvalidRequest, `"expires" given twice`},
		// The envelope of earlier versions, with an API key: refused as unauthorized.
		{`{"key":"k",` + exp + `,"request":{}}`, rpc.CodeUnauthorized, `"key") is no longer accepted over MQTT: sign the request`},
		{`{"signer":"k",` + exp + `,"request":{},"key":"k"` + tail, rpc.CodeUnauthorized, `no longer accepted`},
	}
	for _, c := range bad {
		_, err := parseEnvelope([]byte(c.payload))
		if err == nil || err.Code != c.code || !strings.Contains(err.Message, c.want) {
			t.Errorf("%q: got %v, want %d containing %q", c.payload, err, c.code, c.want)
		}
	}
}

// TestSign: what Sign makes parses, carries the request's bytes as they
// were signed (even with characters json.Marshal would escape), and
// verifies for its gateway and id only.
func TestSign(t *testing.T) {
	exp := time.Date(2026, 11, 25, 14, 5, 0, 0, time.FixedZone("CET", 3600))
	req := "{\"jsonrpc\": \"2.0\",\n \"method\": \"device.write\", \"params\": {\"device\": \"<m&1>\", \"value\": 1.50}, \"id\": 1}"
	payload, err := Sign(ops.priv, ops.name, "gw-1", "req-1", exp, []byte(req))
	if err != nil {
		t.Fatal(err)
	}
	env, perr := parseEnvelope(payload)
	if perr != nil {
		t.Fatalf("%s: %v", payload, perr)
	}
	if want := `{"jsonrpc":"2.0","method":"device.write","params":{"device":"<m&1>","value":1.50},"id":1}`; string(env.request) != want {
		t.Fatalf("request %s, want %s", env.request, want)
	}
	if env.signer != ops.name || env.expiresText != "2026-11-25T13:05:00Z" || !env.expires.Equal(exp) {
		t.Fatalf("envelope %+v", env)
	}
	pub := ops.priv.Public().(ed25519.PublicKey)
	if err := verify(pub, "gw-1", "req-1", env); err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, c := range []struct{ gw, id string }{{"gw-2", "req-1"}, {"gw-1", "req-2"}} {
		if err := verify(pub, c.gw, c.id, env); err == nil {
			t.Errorf("the signature for gw-1/req-1 verifies for %s/%s", c.gw, c.id)
		}
	}
	if err := verify(intruder.priv.Public().(ed25519.PublicKey), "gw-1", "req-1", env); err == nil {
		t.Errorf("verifies with another key")
	}
	for name, call := range map[string]func() ([]byte, error){
		"bad id":      func() ([]byte, error) { return Sign(ops.priv, ops.name, "gw-1", "a/b", exp, []byte(req)) },
		"bad gateway": func() ([]byte, error) { return Sign(ops.priv, ops.name, "gw/1", "a", exp, []byte(req)) },
		"no signer":   func() ([]byte, error) { return Sign(ops.priv, "", "gw-1", "a", exp, []byte(req)) },
		"not json":    func() ([]byte, error) { return Sign(ops.priv, ops.name, "gw-1", "a", exp, []byte("{")) },
		"not object":  func() ([]byte, error) { return Sign(ops.priv, ops.name, "gw-1", "a", exp, []byte(`"x"`)) },
		"no key":      func() ([]byte, error) { return Sign(nil, ops.name, "gw-1", "a", exp, []byte(req)) },
	} {
		if _, err := call(); err == nil {
			t.Errorf("%s: Sign did not refuse", name)
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

func TestBridgeTopics(t *testing.T) {
	in, out := BridgeTopics("gw-1")
	if in != "rpc/gw-1/request/#" || out != "rpc/gw-1/response/#" {
		t.Fatalf("got %q %q", in, out)
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	payload := ops.sign("bench", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseEnvelope(payload); err != nil {
			b.Fatal(err)
		}
	}
}
