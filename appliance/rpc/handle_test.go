package rpc

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/osgate/osgate/internal/scope"
)

func TestCallWithKey(t *testing.T) {
	f := newFixture(t, Options{})
	before := f.metric(t, `osgate_rpc_requests_total{method="add",outcome="ok"}`)
	rep := f.rpc(t, `{"jsonrpc":"2.0","method":"add","params":{"a":1.5,"b":2},"id":7}`)
	if rep.status != http.StatusOK || rep.header.Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %q: %s", rep.status, rep.header.Get("Content-Type"), rep.body)
	}
	r := one(t, rep.body)
	if r.Error != nil || string(*r.Result) != "3.5" || string(r.ID) != "7" {
		t.Fatalf("got %s, want result 3.5 for id 7", rep.body)
	}
	if after := f.metric(t, `osgate_rpc_requests_total{method="add",outcome="ok"}`); after != before+1 {
		t.Errorf("osgate_rpc_requests_total{add,ok} went from %v to %v, want +1", before, after)
	}
}

func TestCallerAndIDsAreEchoed(t *testing.T) {
	f := newFixture(t, Options{})
	for _, id := range []string{`"abc"`, `-3`, `1.25e3`, `null`} {
		rep := f.rpc(t, `{"jsonrpc":"2.0","method":"echo","id":`+id+`}`)
		r := one(t, rep.body)
		if string(r.ID) != id {
			t.Errorf("id %s came back as %s", id, r.ID)
		}
		var res struct {
			Params json.RawMessage `json:"params"`
			Caller string          `json:"caller"`
		}
		if err := json.Unmarshal(*r.Result, &res); err != nil || res.Caller != "tester" || string(res.Params) != "null" {
			t.Errorf("echo result %s: caller %q params %s (%v); want caller tester, params null", *r.Result, res.Caller, res.Params, err)
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		name, body string
		code       int
		id, msg    string
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","method":"add",`, CodeParseError, "null", "parse error"},
		{"not JSON at all", `hello`, CodeParseError, "null", "parse error"},
		{"empty body", ``, CodeParseError, "null", "parse error"},
		{"wrong version", `{"jsonrpc":"1.0","method":"add","id":1}`, CodeInvalidRequest, "1", `jsonrpc must be "2.0"`},
		{"version as number", `{"jsonrpc":2.0,"method":"add","id":1}`, CodeInvalidRequest, "1", `jsonrpc must be "2.0"`},
		{"no version", `{"method":"add","id":1}`, CodeInvalidRequest, "1", `jsonrpc must be "2.0"`},
		{"no method", `{"jsonrpc":"2.0","id":"x"}`, CodeInvalidRequest, `"x"`, "method must be"},
		{"method not a string", `{"jsonrpc":"2.0","method":1,"params":"bar"}`, CodeInvalidRequest, "null", "method must be"},
		{"empty method", `{"jsonrpc":"2.0","method":"","id":2}`, CodeInvalidRequest, "2", "method must be"},
		{"id is an object", `{"jsonrpc":"2.0","method":"add","id":{"a":1}}`, CodeInvalidRequest, "null", "id must be"},
		{"id is a boolean", `{"jsonrpc":"2.0","method":"add","id":true}`, CodeInvalidRequest, "null", "id must be"},
		{"params a string", `{"jsonrpc":"2.0","method":"add","params":"x","id":3}`, CodeInvalidRequest, "3", "params must be"},
		{"unknown member", `{"jsonrpc":"2.0","method":"add","auth":"k","id":4}`, CodeInvalidRequest, "4", `unknown member "auth"`},
		{"method twice", `{"jsonrpc":"2.0","method":"echo","method":"add","params":{"a":1,"b":2},"id":12}`, CodeInvalidRequest, "12", `member "method" appears twice`},
		{"params twice", `{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"params":{"a":5,"b":5},"id":13}`, CodeInvalidRequest, "13", `member "params" appears twice`},
		{"id twice", `{"jsonrpc":"2.0","method":"add","id":1,"id":2}`, CodeInvalidRequest, "null", `member "id" appears twice`},
		{"id not UTF-8", "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":\"\xc3\xff\"}", CodeInvalidRequest, "null", "id must be"},
		{"not an object", `42`, CodeInvalidRequest, "null", "must be a JSON object"},
		{"null", `null`, CodeInvalidRequest, "null", "must be a JSON object"},
		{"empty batch", `[]`, CodeInvalidRequest, "null", "empty batch"},
		{"unknown method", `{"jsonrpc":"2.0","method":"nope","id":5}`, CodeMethodNotFound, "5", `method not found: "nope"`},
		{"reserved method", `{"jsonrpc":"2.0","method":"rpc.other","id":5}`, CodeMethodNotFound, "5", "method not found"},
		{"missing params", `{"jsonrpc":"2.0","method":"add","id":6}`, CodeInvalidParams, "6", "params.a: is required; params.b: is required"},
		{"wrong param type", `{"jsonrpc":"2.0","method":"add","params":{"a":"1","b":2},"id":6}`, CodeInvalidParams, "6", "params.a: must be a number"},
		{"unknown param", `{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2,"c":3},"id":6}`, CodeInvalidParams, "6", "params.c: unknown field"},
		{"positional params to named", `{"jsonrpc":"2.0","method":"add","params":[1,2],"id":6}`, CodeInvalidParams, "6", "must be an object"},
		{"handler InvalidParams", `{"jsonrpc":"2.0","method":"refuse","id":8}`, CodeInvalidParams, "8", `unknown device "meter-9"`},
		{"handler error", `{"jsonrpc":"2.0","method":"fail","id":9}`, CodeServerError, "9", "meter-1 unreachable"},
		{"handler panic", `{"jsonrpc":"2.0","method":"boom","id":10}`, CodeInternalError, "10", "internal error"},
		{"result not encodable", `{"jsonrpc":"2.0","method":"unencodable","id":11}`, CodeInternalError, "11", "could not be encoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := f.rpc(t, tc.body)
			if rep.status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", rep.status, rep.body)
			}
			wantError(t, rep.body, tc.code, tc.id, tc.msg)
		})
	}
}

func TestInvalidParamsCarryPaths(t *testing.T) {
	f := newFixture(t, Options{})
	rep := f.rpc(t, `{"jsonrpc":"2.0","method":"add","params":{"a":true,"bb":1},"id":1}`)
	e := wantError(t, rep.body, CodeInvalidParams, "1", "invalid params")
	data, _ := json.Marshal(e.Data)
	want := `["params.a: must be a number, not a boolean","params.b: is required","params.bb: unknown field (did you mean \"b\"?)"]`
	if string(data) != want {
		t.Errorf("data = %s, want %s", data, want)
	}
}

func TestPanicIsLoggedAndServerSurvives(t *testing.T) {
	f := newFixture(t, Options{})
	before := f.metric(t, `osgate_rpc_requests_total{method="boom",outcome="internal_error"}`)
	wantError(t, f.rpc(t, `{"jsonrpc":"2.0","method":"boom","id":1}`).body, CodeInternalError, "1", "internal error")
	if logs := f.logs.String(); !strings.Contains(logs, "handler panicked") || !strings.Contains(logs, "handler bug") {
		t.Errorf("panic not logged with its value:\n%s", logs)
	}
	if r := one(t, f.rpc(t, `{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":1},"id":2}`).body); r.Error != nil {
		t.Fatalf("call after panic failed: %v", r.Error)
	}
	if after := f.metric(t, `osgate_rpc_requests_total{method="boom",outcome="internal_error"}`); after != before+1 {
		t.Errorf("panic counted %v times, want 1", after-before)
	}
}

func TestNotificationGetsNoResponse(t *testing.T) {
	f := newFixture(t, Options{})
	rep := f.rpc(t, `{"jsonrpc":"2.0","method":"note","params":{}}`)
	if rep.status != http.StatusNoContent || len(rep.body) != 0 {
		t.Fatalf("notification: HTTP %d %q; want 204 and no body", rep.status, rep.body)
	}
	if f.notes.Load() != 1 {
		t.Fatalf("the notification's handler ran %d times, want 1", f.notes.Load())
	}
	// A notification of an unknown or failing method is silent too.
	for _, body := range []string{`{"jsonrpc":"2.0","method":"nope"}`, `{"jsonrpc":"2.0","method":"fail"}`, `{"jsonrpc":"2.0","method":"boom"}`} {
		if rep := f.rpc(t, body); rep.status != http.StatusNoContent {
			t.Errorf("%s: HTTP %d %s; want 204", body, rep.status, rep.body)
		}
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t, Options{})
	rep := f.rpc(t, `[
		{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":"1"},
		{"jsonrpc":"2.0","method":"note"},
		{"jsonrpc":"2.0","method":"nope","id":"2"},
		1,
		{"jsonrpc":"2.0","method":"fail","id":"3"}
	]`)
	if rep.status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rep.status, rep.body)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(rep.body, &raws); err != nil {
		t.Fatalf("batch response %s: %v", rep.body, err)
	}
	if len(raws) != 4 {
		t.Fatalf("got %d responses, want 4 (the notification gets none): %s", len(raws), rep.body)
	}
	rs := make([]wireResponse, len(raws))
	for i, raw := range raws {
		rs[i] = one(t, raw)
	}
	if string(rs[0].ID) != `"1"` || rs[0].Result == nil || string(*rs[0].Result) != "3" {
		t.Errorf("first: %s", rep.body)
	}
	if string(rs[1].ID) != `"2"` || rs[1].Error == nil || rs[1].Error.Code != CodeMethodNotFound {
		t.Errorf("second: %s", rep.body)
	}
	if string(rs[2].ID) != "null" || rs[2].Error == nil || rs[2].Error.Code != CodeInvalidRequest {
		t.Errorf("third: %s", rep.body)
	}
	if string(rs[3].ID) != `"3"` || rs[3].Error == nil || rs[3].Error.Code != CodeServerError {
		t.Errorf("fourth: %s", rep.body)
	}
	if f.notes.Load() != 1 {
		t.Errorf("notification in batch ran %d times, want 1", f.notes.Load())
	}
}

func TestBatchOfNotifications(t *testing.T) {
	f := newFixture(t, Options{})
	rep := f.rpc(t, `[{"jsonrpc":"2.0","method":"note"},{"jsonrpc":"2.0","method":"note"}]`)
	if rep.status != http.StatusNoContent || len(rep.body) != 0 || f.notes.Load() != 2 {
		t.Fatalf("HTTP %d %q, %d notes; want 204, no body, 2 notes", rep.status, rep.body, f.notes.Load())
	}
}

func TestBatchLimit(t *testing.T) {
	f := newFixture(t, Options{})
	call := `{"jsonrpc":"2.0","method":"note"}`
	rep := f.rpc(t, "["+strings.Repeat(call+",", maxBatch)+call+"]")
	wantError(t, rep.body, CodeInvalidRequest, "null", "batch of 101 requests; at most 100")
	if f.notes.Load() != 0 {
		t.Fatalf("%d members of a refused batch ran", f.notes.Load())
	}
	rep = f.rpc(t, "["+strings.Repeat(call+",", maxBatch-1)+call+"]")
	if rep.status != http.StatusNoContent || f.notes.Load() != maxBatch {
		t.Fatalf("batch of %d: HTTP %d, %d ran", maxBatch, rep.status, f.notes.Load())
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	f := newFixture(t, Options{})
	echo, _ := f.srv.lookup("echo")
	for _, tc := range []struct {
		name  string
		scope scope.Scope
		h     Handler
	}{
		{"", scope.Read, echo.Handler},
		{"rpc.x", scope.Read, echo.Handler},
		{"echo", scope.Read, echo.Handler},
		{"fresh", scope.Read, nil},
		{"fresh", scope.None, echo.Handler},
		{"fresh", scope.Admin + 1, echo.Handler},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q, %v) did not panic", tc.name, tc.scope)
				}
			}()
			f.srv.Register(tc.name, tc.scope, tc.h)
		}()
	}
}
