package rpc

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/scope"
)

// TestDiscover: rpc.discover answers an OpenRPC document that lists every
// registered method (itself included, sorted) with the params and result
// schemas its Doc gives.
func TestDiscover(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.Describe("add", Doc{Summary: "Add two numbers.", Params: addParams{}, Result: float64(0), ResultDoc: "a + b"})
	rep := f.rpc(t, `{"jsonrpc":"2.0","method":"rpc.discover","id":1}`)
	r := one(t, rep.body)
	if r.Error != nil {
		t.Fatalf("rpc.discover: %s", rep.body)
	}
	var doc Document
	if err := json.Unmarshal(*r.Result, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range doc.Methods {
		names = append(names, m.Name)
	}
	want := []string{"add", "boom", "echo", "fail", "note", "reconfigure", "refuse", "rpc.discover", "set", "unencodable"}
	if doc.OpenRPC != "1.3.2" || doc.Info.Title == "" || !slices.Equal(names, want) {
		t.Fatalf("document %s; methods %v, want %v", *r.Result, names, want)
	}
	add := doc.Methods[0]
	b, _ := json.Marshal(add)
	if string(b) != `{"name":"add","summary":"Add two numbers.","paramStructure":"by-name","params":[`+
		`{"name":"a","required":true,"schema":{"type":"number"}},{"name":"b","required":true,"schema":{"type":"number"}}],`+
		`"result":{"name":"result","description":"a + b","schema":{"type":"number"}},"x-scope":"read"}` {
		t.Errorf("add: %s", b)
	}
	// Each method says the scope it needs.
	for _, m := range doc.Methods {
		if want := map[string]string{"note": "write", "set": "write", "reconfigure": "admin"}[m.Name]; want != "" && m.Scope != want {
			t.Errorf("%s: x-scope %q, want %q", m.Name, m.Scope, want)
		}
	}
	// A read key may discover every method, those it may not call too.
	rep = f.post(t, "POST", "/rpc", "application/json", "Bearer "+readKey, strings.NewReader(`{"jsonrpc":"2.0","method":"rpc.discover","id":3}`))
	if r := one(t, rep.body); r.Error != nil || !strings.Contains(string(*r.Result), `"reconfigure"`) {
		t.Errorf("rpc.discover with a read key: %s", rep.body)
	}
	// Params of rpc.discover are refused like any method's.
	wantError(t, f.rpc(t, `{"jsonrpc":"2.0","method":"rpc.discover","params":{"x":1},"id":2}`).body, CodeInvalidParams, "2", "params.x: unknown field")
}

// TestMethodNotFoundNamesNearest: a wrong method name lists the nearest
// registered ones, in the message and in data.
func TestMethodNotFoundNamesNearest(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		method  string
		nearest []string
		msg     string
	}{
		{"ad", []string{"add"}, `method not found: "ad" (did you mean "add"?); rpc.discover lists every method`},
		{"ehco", []string{"echo"}, `(did you mean "echo"?)`},
		{"rpc.discovr", []string{"rpc.discover"}, `(did you mean "rpc.discover"?)`},
		{"note2", []string{"note"}, `(did you mean "note"?)`},
		{"x.fail", []string{"fail"}, `(did you mean "fail"?)`}, // the same last part
		{"completely.different", []string{}, `method not found: "completely.different"; rpc.discover lists every method`},
	} {
		rep := f.rpc(t, `{"jsonrpc":"2.0","method":"`+tc.method+`","id":1}`)
		e := wantError(t, rep.body, CodeMethodNotFound, "1", tc.msg)
		data, _ := json.Marshal(e.Data)
		want, _ := json.Marshal(map[string]any{"nearest": tc.nearest})
		if string(data) != string(want) {
			t.Errorf("%s: data %s, want %s", tc.method, data, want)
		}
	}
	f.srv.Register("gateway.status", scope.Read, func(_ context.Context, _ json.RawMessage) (any, error) { return nil, nil })
	f.srv.Register("gateway.config", scope.Admin, func(_ context.Context, _ json.RawMessage) (any, error) { return nil, nil })
	f.srv.Register("ota.status", scope.Read, func(_ context.Context, _ json.RawMessage) (any, error) { return nil, nil })
	e := wantError(t, f.rpc(t, `{"jsonrpc":"2.0","method":"status","id":1}`).body, CodeMethodNotFound, "1", "")
	if !strings.Contains(e.Message, `(did you mean "gateway.status" or "ota.status"?)`) {
		t.Errorf("status: %s", e.Message)
	}
}

type schemaDemo struct {
	Name     string            `json:"name" strict:"required" doc:"the name"`
	Timeout  time.Duration     `json:"timeout"`
	At       time.Time         `json:"at"`
	Unit     uint8             `json:"unit"`
	Level    *int16            `json:"level,omitempty"`
	Tags     []string          `json:"tags"`
	Labels   map[string]string `json:"labels"`
	Value    any               `json:"value"`
	Raw      json.RawMessage   `json:"raw"`
	Inner    struct{ X bool }  `json:"inner"`
	Skipped  string            `json:"-"`
	Progress func()            `json:"-"`
	Rest     json.RawMessage   `strict:"rest"`
	embedded
}

type embedded struct {
	Flat float64 `json:"flat"`
}

func TestSchemaOf(t *testing.T) {
	got, _ := json.Marshal(SchemaOf(schemaDemo{}))
	want := `{"additionalProperties":false,"properties":{` +
		`"at":{"format":"date-time","type":"string"},` +
		`"flat":{"type":"number"},` +
		`"inner":{"additionalProperties":false,"properties":{"X":{"type":"boolean"}},"type":"object"},` +
		`"labels":{"additionalProperties":{"type":"string"},"type":"object"},` +
		`"level":{"maximum":32767,"minimum":-32768,"type":"integer"},` +
		`"name":{"description":"the name","type":"string"},` +
		`"raw":{},` +
		`"tags":{"items":{"type":"string"},"type":"array"},` +
		`"timeout":{"description":"a duration such as \"60s\", \"1m30s\" or \"250ms\"","type":"string"},` +
		`"unit":{"maximum":255,"minimum":0,"type":"integer"},` +
		`"value":{}},"required":["name"],"type":"object"}`
	if string(got) != want {
		t.Errorf("SchemaOf:\n%s\nwant\n%s", got, want)
	}
	ps := ParamsOf(&schemaDemo{})
	if len(ps) != 11 || ps[0].Name != "name" || !ps[0].Required || ps[0].Description != "the name" || ps[10].Name != "flat" {
		t.Errorf("ParamsOf: %+v", ps)
	}
	if len(ParamsOf(nil)) != 0 || !reflect.DeepEqual(SchemaOf(nil), map[string]any{}) {
		t.Error("nil params or result")
	}
}
