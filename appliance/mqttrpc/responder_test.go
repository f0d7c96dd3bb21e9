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
	return startResponder(t, Options{URL: l.broker.URL(), GatewayID: gw, Operators: testOperators(), Server: l.methods.srv,
		StateDir: l.stateDir, MaxBody: 4096})
}

func TestGoodKeyRunsMethods(t *testing.T) {
	l := newLocal(t)
	r := l.caller.call(t, "status-1", ops.sign("status-1", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":7}`))
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

	r = l.caller.call(t, "read-1", ops.sign("read-1", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":"r"}`))
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"voltage_l1"`)) {
		t.Fatalf("device.read: result %s, error %v", r.Result, r.Error)
	}
	// Method errors come back as over HTTP.
	r = l.caller.call(t, "read-2", ops.sign("read-2", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-9"},"id":1}`))
	wantError(t, r, rpc.CodeInvalidParams, "unknown device")

	// A batch gets an array.
	b := l.caller.callRaw(t, "batch-1", ops.sign("batch-1", soon(),
		`[{"jsonrpc":"2.0","method":"gateway.status","id":1},{"jsonrpc":"2.0","method":"nope","id":2}]`))
	var batch []response
	if err := json.Unmarshal(b, &batch); err != nil || len(batch) != 2 || batch[0].Error != nil || batch[1].Error == nil || batch[1].Error.Code != rpc.CodeMethodNotFound {
		t.Fatalf("batch response %s (%v): want a result and a -32601", b, err)
	}
	if got := l.methods.status.Load(); got != 2 {
		t.Fatalf("gateway.status ran %d times, want 2", got)
	}

	// A notification runs and is not answered.
	l.caller.send(t, "note-1", ops.sign("note-1", soon(), `{"jsonrpc":"2.0","method":"gateway.status"}`))
	if out := l.resp.out.wait(t, "note-1", 1); out != outHandled {
		t.Fatalf("notification: outcome %q, want %q", out, outHandled)
	}
	if got := l.methods.status.Load(); got != 3 {
		t.Fatalf("gateway.status ran %d times after the notification, want 3", got)
	}
	l.caller.call(t, "after-note", ops.sign("after-note", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
	if n := l.caller.count("note-1"); n != 0 {
		t.Fatalf("the notification got %d responses, want none", n)
	}
}

// TestBadSignatureRefused: a request runs only with a signature by a
// configured operator key over this gateway, this request id, its expiry
// and its request; the old envelope with an API key is refused, naming
// the fix, and its key is neither logged nor echoed.
func TestBadSignatureRefused(t *testing.T) {
	l := newLocal(t)
	before := counterValue(t, metrics.RPCAuthFailures)
	read := `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`
	exp := soon()
	good := ops.sign("tamper", exp, read)
	const bearer = "old-bearer-key-5c2e9a71d3"
	cases := []struct {
		id      string
		payload []byte
		reason  string
	}{
		{"bad-1", intruder.sign("bad-1", soon(), read), "signature does not match"},
		{"bad-2", newOperator("stranger", 9).sign("bad-2", soon(), read), `unknown signer "stranger"`},
		{"bad-3", ops.signFor("gw-other", "bad-3", soon(), read), "signature does not match"},
		{"bad-4", bytes.Replace(good, []byte(`"device.read"`), []byte(`"gateway.status"`), 1), "signature does not match"},
		{"bad-5", bytes.Replace(good, []byte(exp.UTC().Format(time.RFC3339)), []byte(exp.Add(time.Minute).UTC().Format(time.RFC3339)), 1), "signature does not match"},
		{"bad-6", bytes.Replace(ops.sign("bad-6", soon(), read), []byte(`"signature":"`), []byte(`"signature":"AAAA`), 1), "signature does not match"},
		{"bad-7", []byte(`{"key":"` + bearer + `","expires":"` + exp.UTC().Format(time.RFC3339) + `","request":` + read + `}`), "is no longer accepted over MQTT"},
	}
	for _, c := range cases {
		r := l.caller.call(t, c.id, c.payload)
		wantError(t, r, rpc.CodeUnauthorized, c.reason)
		if string(r.ID) != "null" {
			t.Fatalf("%s: response id %s, want null (as over HTTP)", c.id, r.ID)
		}
		if strings.Contains(r.Error.Message, bearer) {
			t.Fatalf("%s: the answer repeats the API key: %s", c.id, r.Error.Message)
		}
	}
	if n := l.methods.reads.Load() + l.methods.status.Load(); n != 0 {
		t.Fatalf("methods ran %d times for refused requests", n)
	}
	if d := counterValue(t, metrics.RPCAuthFailures) - before; d != float64(len(cases)) {
		t.Fatalf("osgate_rpc_auth_failures_total grew by %v, want %d", d, len(cases))
	}
	logs := l.resp.logs.String()
	if strings.Contains(logs, bearer) {
		t.Fatalf("an API key was logged:\n%s", logs)
	}
	if !strings.Contains(logs, "signature does not match") || !strings.Contains(logs, "earlier versions") {
		t.Fatalf("the refusals were not logged:\n%s", logs)
	}
	// A refused request does not use up the id.
	l.caller.send(t, "bad-1", ops.sign("bad-1", soon(), read))
	waitAnswers(t, l.caller, "bad-1", 2)
	if r := decodeResponse(t, l.caller.answer("bad-1", 1)); r.Error != nil {
		t.Fatalf("a good signature on an id refused before: %v", r.Error)
	}
}

// TestReplayUnderNewIDRefused: a request that ran, published again under
// another request id or to another gateway, does not run again: the
// signature covers the id and the gateway.
func TestReplayUnderNewIDRefused(t *testing.T) {
	l := newLocal(t)
	other := startResponder(t, Options{URL: l.broker.URL(), GatewayID: "gw-two", Operators: testOperators(), Server: l.methods.srv,
		StateDir: t.TempDir(), ClientID: "osgate-rpc-two"})
	otherCaller := newCaller(t, l.broker.URL(), "cloud-app-two", "gw-two")
	captured := ops.sign("write-1", soon(), `{"jsonrpc":"2.0","method":"device.write","params":{"device":"meter-1","channel":"relay","value":1},"id":1}`)
	if r := l.caller.call(t, "write-1", captured); r.Error != nil {
		t.Fatalf("the original request: %v", r.Error)
	}
	for _, id := range []string{"write-2", "write-1-again", "x"} {
		r := l.caller.call(t, id, captured)
		wantError(t, r, rpc.CodeUnauthorized, "signature does not match")
	}
	r := otherCaller.call(t, "write-1", captured)
	wantError(t, r, rpc.CodeUnauthorized, `over gateway "gw-two"`)
	if out := other.out.wait(t, "write-1", 1); out != outAuth {
		t.Fatalf("on another gateway: outcome %q, want %q", out, outAuth)
	}
	// The same id again is a redelivery: not run, not answered.
	l.caller.send(t, "write-1", captured)
	if out := l.resp.out.wait(t, "write-1", 2); out != outDuplicate {
		t.Fatalf("same id again: outcome %q, want %q", out, outDuplicate)
	}
	if n := l.methods.writes.Load(); n != 1 {
		t.Fatalf("device.write ran %d times, want once", n)
	}
}

// TestOperatorScope: an operator key with scope read may read and is
// refused a write (-32005) before the method runs; the admin key may
// write, and the method sees the signer's name as the caller.
func TestOperatorScope(t *testing.T) {
	l := newLocal(t)
	write := `{"jsonrpc":"2.0","method":"device.write","params":{"device":"meter-1","channel":"relay","value":1},"id":1}`
	r := l.caller.call(t, "dash-read", reader.sign("dash-read", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`))
	if r.Error != nil {
		t.Fatalf("device.read by a read key: %v", r.Error)
	}
	r = l.caller.call(t, "dash-write", reader.sign("dash-write", soon(), write))
	wantError(t, r, rpc.CodeForbidden, `needs a key with scope "write"`)
	if n := l.methods.writes.Load(); n != 0 {
		t.Fatalf("device.write ran for a read key")
	}
	r = l.caller.call(t, "ops-write", ops.sign("ops-write", soon(), write))
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"caller":"cloud-ops"`)) {
		t.Fatalf("device.write by the admin key: %s %v", r.Result, r.Error)
	}
}

func TestExpiryChecked(t *testing.T) {
	l := newLocal(t)
	req := `{"jsonrpc":"2.0","method":"gateway.status","id":1}`
	r := l.caller.call(t, "old", ops.sign("old", time.Now().Add(-time.Minute), req))
	wantError(t, r, CodeExpired, "expired at")
	r = l.caller.call(t, "far", ops.sign("far", time.Now().Add(2*time.Hour), req))
	wantError(t, r, CodeExpired, "more than 1h0m0s after the gateway time")
	if n := l.methods.status.Load(); n != 0 {
		t.Fatalf("gateway.status ran %d times for refused requests", n)
	}
	// Expiry within the hour, in another zone, is accepted.
	r = l.caller.call(t, "ok", ops.sign("ok", time.Now().Add(50*time.Minute).In(time.FixedZone("X", -5*3600)), req))
	if r.Error != nil {
		t.Fatalf("valid expiry refused: %v", r.Error)
	}
}

func TestReplayRefusedAcrossRestart(t *testing.T) {
	l := newLocal(t)
	exp := soon()
	first := ops.sign("once", exp, `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`)
	if r := l.caller.call(t, "once", first); r.Error != nil {
		t.Fatalf("first call: %v", r.Error)
	}
	// The same message again (a QoS 1 redelivery, or a replay): not run, not answered.
	l.caller.send(t, "once", first)
	if out := l.resp.out.wait(t, "once", 2); out != outDuplicate {
		t.Fatalf("same message again: outcome %q, want %q", out, outDuplicate)
	}
	// Another request under the same id: refused.
	other := ops.sign("once", exp, `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":2}`)
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
	if r := l.caller.call(t, "fresh", ops.sign("fresh", exp, `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":2}`)); r.Error != nil {
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
	big := ops.sign("big", soon(), `{"jsonrpc":"2.0","method":"gateway.status","params":{"pad":"`+strings.Repeat("x", 5000)+`"},"id":1}`)
	r := l.caller.call(t, "big", big)
	wantError(t, r, rpc.CodeInvalidRequest, "request too large")
	if n := l.methods.status.Load(); n != 0 {
		t.Fatalf("gateway.status ran for an oversized request")
	}
	// Still answering.
	if r := l.caller.call(t, "small", ops.sign("small", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`)); r.Error != nil {
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
		{"m-3", `{"signer":"cloud-ops","expires":"2030-01-01T00:00:00Z"}`, rpc.CodeInvalidRequest, `missing member "request", "signature"`},
		{"m-4", `{"signer":"cloud-ops","expires":"tomorrow","request":{},"signature":"x"}`, rpc.CodeInvalidRequest, "RFC 3339"},
		{"m-5", `{"signer":"cloud-ops","expires":"2030-01-01T00:00:00Z","request":{},"signature":"x","id":1}`, rpc.CodeInvalidRequest, `unknown member "id"`},
		{"m-6", `{"signer":7,"expires":"2030-01-01T00:00:00Z","request":{},"signature":"x"}`, rpc.CodeInvalidRequest, `"signer" must be the name`},
		{"m-7", `{"signer":"a","signer":"b","expires":"2030-01-01T00:00:00Z","request":{},"signature":"x"}`, rpc.CodeInvalidRequest, "given twice"},
		// The envelope is fine; the JSON-RPC object inside is not.
		{"m-8", string(ops.sign("m-8", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1,"key":"x"}`)), rpc.CodeInvalidRequest, `unknown member "key"`},
	}
	for _, c := range cases {
		r := l.caller.call(t, c.id, []byte(c.payload))
		wantError(t, r, c.code, c.what)
	}
	// No id in the topic: nothing to answer; logged and dropped.
	for _, topic := range []string{"rpc/" + gw + "/request/bad id", "rpc/" + gw + "/request/" + strings.Repeat("a", 65)} {
		l.caller.sendTopic(t, topic, ops.sign("x", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
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
	l.caller.call(t, "last", ops.sign("last", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`))
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
