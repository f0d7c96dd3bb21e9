package mqttrpc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/testpeer"
)

const gw = "gw-test"

// local is one Mosquitto with a Responder and a caller on it.
type local struct {
	broker   *testpeer.Mosquitto
	methods  *methods
	stateDir string
	resp     *running
	caller   *caller
}

func newLocal(t *testing.T) *local {
	t.Helper()
	l := &local{broker: testpeer.StartMosquitto(t, testpeer.MosquittoOptions{}), methods: newMethods(t, gw), stateDir: t.TempDir()}
	l.resp = l.start(t)
	l.caller = newCaller(t, l.broker.URL(), "cloud-app", gw)
	return l
}

func (l *local) start(t *testing.T) *running {
	return startResponder(t, Options{URL: l.broker.URL(), GatewayID: gw, Keys: testKeys(), Server: l.methods.srv,
		StateDir: l.stateDir, MaxBody: 4096})
}

func TestGoodKeyRunsMethods(t *testing.T) {
	l := newLocal(t)
	r := l.caller.call(t, "status-1", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":7}`))
	if r.Error != nil {
		t.Fatalf("gateway.status: %v", r.Error)
	}
	var st struct{ ID, Caller string }
	if err := json.Unmarshal(r.Result, &st); err != nil || st.ID != gw || st.Caller != "cloud-ops" {
		t.Fatalf("gateway.status result %s (%v): want id %q and caller cloud-ops", r.Result, err, gw)
	}
	if string(r.ID) != "7" {
		t.Fatalf("response id %s, want the request's 7", r.ID)
	}

	r = l.caller.call(t, "read-1", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":"r"}`))
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"voltage_l1"`)) {
		t.Fatalf("device.read: result %s, error %v", r.Result, r.Error)
	}
	// Method errors come back as over HTTP.
	r = l.caller.call(t, "read-2", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-9"},"id":1}`))
	wantError(t, r, rpc.CodeInvalidParams, "unknown device")

	// A batch gets an array.
	b := l.caller.callRaw(t, "batch-1", envelopeOf(goodKey, soon(),
		`[{"jsonrpc":"2.0","method":"gateway.status","id":1},{"jsonrpc":"2.0","method":"nope","id":2}]`))
	var batch []response
	if err := json.Unmarshal(b, &batch); err != nil || len(batch) != 2 || batch[0].Error != nil || batch[1].Error == nil || batch[1].Error.Code != rpc.CodeMethodNotFound {
		t.Fatalf("batch response %s (%v): want a result and a -32601", b, err)
	}
	if got := l.methods.status.Load(); got != 2 {
		t.Fatalf("gateway.status ran %d times, want 2", got)
	}

	// A notification runs and is not answered.
	l.caller.send(t, "note-1", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status"}`))
	if out := l.resp.out.wait(t, "note-1", 1); out != outHandled {
		t.Fatalf("notification: outcome %q, want %q", out, outHandled)
	}
	if got := l.methods.status.Load(); got != 3 {
		t.Fatalf("gateway.status ran %d times after the notification, want 3", got)
	}
	l.caller.call(t, "after-note", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
	if n := l.caller.count("note-1"); n != 0 {
		t.Fatalf("the notification got %d responses, want none", n)
	}
}

func TestBadKeyRefused(t *testing.T) {
	l := newLocal(t)
	before := counterValue(t, metrics.RPCAuthFailures)
	cases := []struct{ id, key, reason string }{
		{"bad-1", badKey, "unknown API key"},
		{"bad-2", "", "missing API key"},
		{"bad-3", "has space", "malformed API key"},
		{"bad-4", strings.Repeat("k", 2000), "malformed API key"},
	}
	for _, c := range cases {
		r := l.caller.call(t, c.id, envelopeOf(c.key, soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`))
		wantError(t, r, rpc.CodeUnauthorized, c.reason)
		if string(r.ID) != "null" {
			t.Fatalf("%s: response id %s, want null (as over HTTP)", c.id, r.ID)
		}
	}
	if n := l.methods.reads.Load(); n != 0 {
		t.Fatalf("device.read ran %d times with wrong keys", n)
	}
	if d := counterValue(t, metrics.RPCAuthFailures) - before; d != float64(len(cases)) {
		t.Fatalf("osgate_rpc_auth_failures_total grew by %v, want %d", d, len(cases))
	}
	logs := l.resp.logs.String()
	if strings.Contains(logs, badKey) || strings.Contains(logs, goodKey) {
		t.Fatalf("a key was logged:\n%s", logs)
	}
	if !strings.Contains(logs, "unknown API key") {
		t.Fatalf("the refusal was not logged:\n%s", logs)
	}
	// A refused key does not use up the id.
	l.caller.send(t, "bad-1", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`))
	waitAnswers(t, l.caller, "bad-1", 2)
	if r := decodeResponse(t, l.caller.answer("bad-1", 1)); r.Error != nil {
		t.Fatalf("good key on an id refused before: %v", r.Error)
	}
}

func TestExpiryChecked(t *testing.T) {
	l := newLocal(t)
	req := `{"jsonrpc":"2.0","method":"gateway.status","id":1}`
	r := l.caller.call(t, "old", envelopeOf(goodKey, time.Now().Add(-time.Minute), req))
	wantError(t, r, CodeExpired, "expired at")
	r = l.caller.call(t, "far", envelopeOf(goodKey, time.Now().Add(2*time.Hour), req))
	wantError(t, r, CodeExpired, "more than 1h0m0s after the gateway time")
	if n := l.methods.status.Load(); n != 0 {
		t.Fatalf("gateway.status ran %d times for refused requests", n)
	}
	// Expiry within the hour, in another zone, is accepted.
	r = l.caller.call(t, "ok", envelopeOf(goodKey, time.Now().Add(50*time.Minute).In(time.FixedZone("X", -5*3600)), req))
	if r.Error != nil {
		t.Fatalf("valid expiry refused: %v", r.Error)
	}
}

func TestReplayRefusedAcrossRestart(t *testing.T) {
	l := newLocal(t)
	exp := soon()
	first := envelopeOf(goodKey, exp, `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`)
	if r := l.caller.call(t, "once", first); r.Error != nil {
		t.Fatalf("first call: %v", r.Error)
	}
	// The same message again (a QoS 1 redelivery, or a replay): not run, not answered.
	l.caller.send(t, "once", first)
	if out := l.resp.out.wait(t, "once", 2); out != outDuplicate {
		t.Fatalf("same message again: outcome %q, want %q", out, outDuplicate)
	}
	// Another request under the same id: refused.
	other := envelopeOf(goodKey, exp, `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":2}`)
	l.caller.send(t, "once", other)
	if out := l.resp.out.wait(t, "once", 3); out != outReplayed {
		t.Fatalf("other request, same id: outcome %q, want %q", out, outReplayed)
	}
	waitAnswers(t, l.caller, "once", 2)
	wantError(t, decodeResponse(t, l.caller.answer("once", 1)), CodeReplayed, "was used before")

	// After a restart, the journal still knows the id.
	l.resp.stop()
	l.resp = l.start(t)
	l.caller.send(t, "once", first)
	if out := l.resp.out.wait(t, "once", 1); out != outDuplicate {
		t.Fatalf("after restart, same message: outcome %q, want %q", out, outDuplicate)
	}
	l.caller.send(t, "once", other)
	if out := l.resp.out.wait(t, "once", 2); out != outReplayed {
		t.Fatalf("after restart, other request: outcome %q, want %q", out, outReplayed)
	}
	waitAnswers(t, l.caller, "once", 3)
	if n := l.methods.reads.Load(); n != 1 {
		t.Fatalf("device.read ran %d times, want once", n)
	}
	if r := l.caller.call(t, "fresh", other); r.Error != nil {
		t.Fatalf("a new id after restart: %v", r.Error)
	}
}

func waitAnswers(t *testing.T, c *caller, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for c.count(id) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d responses on %q within %s, want %d", c.count(id), id, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := len(c.answers[id]); got != n {
		t.Fatalf("%d responses on %q, want %d", got, id, n)
	}
}

func TestOversizedRefused(t *testing.T) {
	l := newLocal(t)
	big := envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","params":{"pad":"`+strings.Repeat("x", 5000)+`"},"id":1}`)
	r := l.caller.call(t, "big", big)
	wantError(t, r, rpc.CodeInvalidRequest, "request too large")
	if n := l.methods.status.Load(); n != 0 {
		t.Fatalf("gateway.status ran for an oversized request")
	}
	// Still answering.
	if r := l.caller.call(t, "small", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`)); r.Error != nil {
		t.Fatalf("after an oversized request: %v", r.Error)
	}
}

func TestMalformedAnsweredOrDropped(t *testing.T) {
	l := newLocal(t)
	cases := []struct {
		id      string
		payload string
		code    int
		what    string
	}{
		{"m-1", `not json`, rpc.CodeParseError, "not valid JSON"},
		{"m-2", `[1,2]`, rpc.CodeInvalidRequest, "must be a JSON object"},
		{"m-3", `{"key":"` + goodKey + `","expires":"2030-01-01T00:00:00Z"}`, rpc.CodeInvalidRequest, `missing member "request"`},
		{"m-4", `{"key":"` + goodKey + `","expires":"tomorrow","request":{}}`, rpc.CodeInvalidRequest, "RFC 3339"},
		{"m-5", `{"key":"` + goodKey + `","expires":"2030-01-01T00:00:00Z","request":{},"id":1}`, rpc.CodeInvalidRequest, `unknown member "id"`},
		{"m-6", `{"key":7,"expires":"2030-01-01T00:00:00Z","request":{}}`, rpc.CodeInvalidRequest, `"key" must be a string`},
		{"m-7", `{"key":"a","key":"b","expires":"2030-01-01T00:00:00Z","request":{}}`, rpc.CodeInvalidRequest, "given twice"},
		// The envelope is fine; the JSON-RPC object inside is not.
		{"m-8", string(envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1,"key":"x"}`)), rpc.CodeInvalidRequest, `unknown member "key"`},
	}
	for _, c := range cases {
		r := l.caller.call(t, c.id, []byte(c.payload))
		wantError(t, r, c.code, c.what)
	}
	// No id in the topic: nothing to answer; logged and dropped.
	for _, topic := range []string{"rpc/" + gw + "/request/bad id", "rpc/" + gw + "/request/" + strings.Repeat("a", 65)} {
		l.caller.sendTopic(t, topic, envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
	}
	if out := l.resp.out.wait(t, "", 2); out != outDropped {
		t.Fatalf("request without an id: outcome %q, want %q", out, outDropped)
	}
	if !strings.Contains(l.resp.logs.String(), "no valid request id") {
		t.Fatalf("the dropped request was not logged")
	}
	if n := l.methods.status.Load(); n != 0 {
		t.Fatalf("gateway.status ran %d times for malformed requests", n)
	}
	l.caller.call(t, "last", envelopeOf(goodKey, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
	l.caller.mu.Lock()
	total := l.caller.total
	l.caller.mu.Unlock()
	if total != len(cases)+1 {
		t.Fatalf("%d responses, want %d (one per request with an id)", total, len(cases)+1)
	}
}

// callRaw sends a request and returns its raw response body.
func (c *caller) callRaw(t testing.TB, id string, payload []byte) []byte {
	t.Helper()
	c.send(t, id, payload)
	b, ok := c.await(id, within)
	if !ok {
		t.Fatalf("no response to request %q within %s", id, within)
	}
	return b
}

// answer is the i-th (from 0) response on id.
func (c *caller) answer(id string, i int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers[id][i]
}
