package rpc

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/osgate/osgate/internal/scope"
)

// TestScopes: each key calls what its scope allows and is refused the
// rest with -32005, before the method runs; a context without a caller
// may call nothing.
func TestScopes(t *testing.T) {
	f := newFixture(t, Options{})
	call := func(key, method string) reply {
		t.Helper()
		return f.post(t, "POST", "/rpc", "application/json", "Bearer "+key,
			strings.NewReader(`{"jsonrpc":"2.0","method":"`+method+`","params":{},"id":1}`))
	}
	cases := []struct {
		key, method string
		allowed     bool
	}{
		{readKey, "echo", true}, {readKey, "note", false}, {readKey, "reconfigure", false},
		{writeKey, "echo", true}, {writeKey, "note", true}, {writeKey, "reconfigure", false},
		{testKey, "echo", true}, {testKey, "note", true}, {testKey, "reconfigure", true},
	}
	for _, c := range cases {
		notes := f.notes.Load()
		rep := call(c.key, c.method)
		if rep.status != http.StatusOK {
			t.Fatalf("%s by %s: HTTP %d", c.method, c.key, rep.status)
		}
		r := one(t, rep.body)
		switch {
		case c.allowed && r.Error != nil:
			t.Errorf("%s by %s: %v, want a result", c.method, c.key, r.Error)
		case !c.allowed:
			wantError(t, rep.body, CodeForbidden, "1", `needs a key with scope`)
		}
		if !c.allowed && c.method == "note" && f.notes.Load() != notes {
			t.Errorf("note ran for a key whose scope does not allow it")
		}
	}
	if !strings.Contains(f.logs.String(), "the key's scope does not allow the method") {
		t.Errorf("refusals not logged:\n%s", f.logs)
	}

	// A batch is checked call by call.
	rep := f.post(t, "POST", "/rpc", "application/json", "Bearer "+readKey, strings.NewReader(
		`[{"jsonrpc":"2.0","method":"echo","id":1},{"jsonrpc":"2.0","method":"reconfigure","id":2}]`))
	if !strings.Contains(string(rep.body), `"result"`) || !strings.Contains(string(rep.body), `-32005`) {
		t.Errorf("mixed batch by a read key: %s", rep.body)
	}

	// No caller: nothing runs.
	resp := f.srv.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"echo","id":1}`))
	wantError(t, resp, CodeForbidden, "1", `this key's scope is "none"`)

	got := f.srv.Scopes()
	if got["echo"] != scope.Read || got["note"] != scope.Write || got["reconfigure"] != scope.Admin || len(got) != 9 {
		t.Errorf("Scopes() = %v", got)
	}
}

// TestWriteCallsAreLogged: every write and admin call is logged at info
// level with the key's name and its params, secrets redacted; read calls
// are not.
func TestWriteCallsAreLogged(t *testing.T) {
	f := newFixture(t, Options{})
	const secret = "hunter2-canary"
	rep := f.post(t, "POST", "/rpc", "application/json", "Bearer "+writeKey, strings.NewReader(
		`{"jsonrpc":"2.0","method":"set","params":{"device":"meter-1","value":42,"settings":{"password":"`+secret+`","api_key":"`+secret+`"}},"id":1}`))
	if r := one(t, rep.body); r.Error != nil {
		t.Fatalf("set: %v", r.Error)
	}
	f.rpc(t, `{"jsonrpc":"2.0","method":"reconfigure","id":2}`)
	f.rpc(t, `{"jsonrpc":"2.0","method":"echo","params":{"x":1},"id":3}`)
	logs := f.logs.String()
	var write, admin string
	for _, l := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(l, "level=INFO") && strings.Contains(l, `msg="rpc: write call"`):
			write = l
		case strings.Contains(l, "level=INFO") && strings.Contains(l, `msg="rpc: admin call"`):
			admin = l
		case strings.Contains(l, "level=INFO") && strings.Contains(l, "method=echo"):
			t.Errorf("a read call is logged at info level: %s", l)
		}
	}
	for _, want := range []string{"method=set", "caller=writer", `\"device\":\"meter-1\"`, `\"value\":42`, `\"password\":\"***\"`, `\"api_key\":\"***\"`, "outcome=ok"} {
		if !strings.Contains(write, want) {
			t.Errorf("write call log line lacks %s: %q", want, write)
		}
	}
	if !strings.Contains(admin, "method=reconfigure") || !strings.Contains(admin, "caller=tester") {
		t.Errorf("admin call log line: %q", admin)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("a secret reached the log:\n%s", logs)
	}
}
