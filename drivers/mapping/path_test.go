package mapping

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPathLookup(t *testing.T) {
	doc, err := decodeJSON([]byte(`{"a":{"b":[10,{"c":"x"},30]},"k.e.y":1,"n":null,"":2}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want any
		ok   bool
	}{
		{"a.b[0]", json.Number("10"), true},
		{"a.b[1].c", "x", true},
		{"a.b[-1]", json.Number("30"), true},
		{"a.b[-3]", json.Number("10"), true},
		{"a.b[-4]", nil, false},
		{"a.b[3]", nil, false},
		{`["k.e.y"]`, json.Number("1"), true},
		{`[""]`, json.Number("2"), true},
		{"n", nil, false},
		{"a.x", nil, false},
		{"a[0]", nil, false},
		{"a.b.c", nil, false},
		{"a.b[0].c", nil, false},
	} {
		p, err := ParsePath(tc.path)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", tc.path, err)
		}
		got, ok := p.Lookup(doc)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
	root, _ := ParsePath("")
	if v, ok := root.Lookup(doc); !ok || v == nil || !root.IsRoot() {
		t.Errorf("root lookup = %v, %v", v, ok)
	}
}

func TestPathErrors(t *testing.T) {
	for path, frag := range map[string]string{
		".a":               "a key is expected",
		"a.":               "a key is expected",
		"a..b":             "a key is expected",
		"a.[0]":            "a key is expected",
		"a[":               "not closed",
		"a[x]":             "not an array index",
		"a[+1]":            "not an array index",
		"a[0]b":            "expected \".\" or \"[\"",
		"a]":               "expected \".\" or \"[\"",
		`a["x`:             "not closed",
		`a["x"`:            "expected \"]\"",
		`a["\q"]`:          "bad quoted key",
		"a[1e3]":           "not an array index",
		"a[9999999999999]": "not an array index",
	} {
		_, err := ParsePath(path)
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParsePath(%q) = %v, want an error containing %q", path, err, frag)
		}
	}
}
