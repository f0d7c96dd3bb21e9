package fleet

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecodeAnswer(t *testing.T) {
	for payload, want := range map[string]string{
		`{"jsonrpc":"2.0","id":1,"result":{"id":"gw-1"}}`:                                  `ok {"id":"gw-1"}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found: x"}}`: `error -32601 method not found: x`,
		`{"jsonrpc":"2.0","id":1,"result":null}`:                                           `ok null`,
		`null`:                                                                             `error -32700 the answer is not a JSON-RPC response: it has neither`,
		`{"jsonrpc":"2.0","id":1}`:                                                         `error -32700 the answer is not a JSON-RPC response: it has neither`,
		`not json`:                                                                         `error -32700 the answer is not a JSON-RPC response`,
		`{"error":{"code":"x"}}`:                                                           `error -32700 the answer is not a JSON-RPC response`,
	} {
		a := decodeAnswer("gw-1", []byte(payload))
		got := a.Outcome + " " + string(a.Result)
		if a.Error != nil {
			got = a.Outcome + " " + strconv.Itoa(a.Error.Code) + " " + a.Error.Message
		}
		if a.Gateway != "gw-1" || !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", payload, got, want)
		}
	}
}

func TestAnswerSummary(t *testing.T) {
	answers := []Answer{{Gateway: "gw-1", Outcome: "ok"}, {Gateway: "gw-3", Outcome: "silent"}, {Gateway: "gw-2", Outcome: "error"}, {Gateway: "gw-4", Outcome: "silent"}}
	got := AnswerSummary(answers, []string{"gw-9"}, 1500*time.Millisecond)
	want := "4 asked: 1 ok, 1 errors, 2 silent (gw-3, gw-4), in 1.5s; 1 offline, not asked (gw-9)"
	if got != want {
		t.Errorf("%q, want %q", got, want)
	}
	var many []string
	for i := range 15 {
		many = append(many, "gw-"+strconv.Itoa(10+i))
	}
	if l := list(many, 10); !strings.HasSuffix(l, "gw-19 and 5 more") {
		t.Errorf("list of 15: %s", l)
	}
}

// FuzzDecodeAnswer: whatever a gateway (or anyone on its response topic)
// publishes, the answer is ok or error, never a panic.
func FuzzDecodeAnswer(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"result":{}}`, `{"error":{"code":-1,"message":"m"}}`, `{"result":`, `[]`, `null`, `"x"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		a := decodeAnswer("gw", payload)
		if a.Outcome != "ok" && a.Outcome != "error" || a.Outcome == "error" && a.Error == nil {
			t.Fatalf("%q: %+v", payload, a)
		}
	})
}
