package rpc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParams(t *testing.T) {
	type named struct {
		Device  string `json:"device" strict:"required"`
		Channel string `json:"channel"`
	}
	for _, tc := range []struct {
		name, raw string
		into      func() any
		code      int // 0: no error
		msg       string
	}{
		{"named", `{"device":"m1","channel":"v"}`, func() any { return &named{} }, 0, ""},
		{"absent into struct", ``, func() any { return &named{} }, CodeInvalidParams, "params.device: is required"},
		{"null into struct", `null`, func() any { return &named{} }, CodeInvalidParams, "params.device: is required"},
		{"comment is ignored", `{"device":"m1","_comment":"x"}`, func() any { return &named{} }, 0, ""},
		{"positional", `[1,2,3]`, func() any { return &[]int{} }, 0, ""},
		{"absent into slice", ``, func() any { return &[]int{} }, 0, ""},
		{"bad element", `[1,"two"]`, func() any { return &[]int{} }, CodeInvalidParams, "params[1]: must be an integer"},
		{"map", `{"a":1}`, func() any { return &map[string]float64{} }, 0, ""},
		{"absent into scalar", ``, func() any { var x int; return &x }, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Params(json.RawMessage(tc.raw), tc.into())
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Params(%s): %v", tc.raw, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("Params(%s) = %v; want %d containing %q", tc.raw, err, tc.code, tc.msg)
			}
		})
	}
	var n named
	if err := Params(json.RawMessage(`{"device":"m1","channel":"v"}`), &n); err != nil || n != (named{"m1", "v"}) {
		t.Errorf("decoded %+v, %v", n, err)
	}
}
