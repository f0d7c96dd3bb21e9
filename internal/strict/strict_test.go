package strict

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type chanT struct {
	Name  string          `json:"name" strict:"required"`
	Scale *float64        `json:"scale"`
	Rest  json.RawMessage `strict:"rest"`
}

type devT struct {
	Name     string        `json:"name" strict:"required"`
	Interval time.Duration `json:"interval"`
	Unit     uint8         `json:"unit_id"`
	Channels []chanT       `json:"channels"`
}

type rootT struct {
	Devices []devT            `json:"devices"`
	Labels  map[string]string `json:"labels"`
	Enabled bool              `json:"enabled"`
}

func TestDecodeReportsEveryErrorWithPath(t *testing.T) {
	doc := `{"_comment":"ok","devices":[{"name":"a","interval":"5s","channels":[{"name":"x","scale":0.5,"register":3}]},
	{"interval":5,"unit_id":300,"channels":[{"name":"y","scale":"big"}],"intervall":"1s"}],
	"labels":{"k":1},"enabled":"yes"}`
	var r rootT
	err := Decode([]byte(doc), &r)
	want := []string{
		`devices[1].channels[0].scale: must be a number, not a string`,
		`devices[1].interval: must be a duration string like "5s" or "250ms", not a number`,
		`devices[1].intervall: unknown field (did you mean "interval"?)`,
		`devices[1].name: is required`,
		`devices[1].unit_id: must be an integer from 0 to 255, not 300`,
		`enabled: must be true or false, not a string`,
		`labels.k: must be a string, not a number`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if r.Devices[0].Interval != 5*time.Second || *r.Devices[0].Channels[0].Scale != 0.5 {
		t.Errorf("good values not decoded: %+v", r.Devices[0])
	}
	if string(r.Devices[0].Channels[0].Rest) != `{"register":3}` {
		t.Errorf("rest = %s", r.Devices[0].Channels[0].Rest)
	}
}

func TestDecodeSyntaxErrorNamesPosition(t *testing.T) {
	var r rootT
	err := Decode([]byte("{\n  \"devices\": [,]\n}"), &r)
	if err == nil || !strings.Contains(err.Error(), "line 2, column") {
		t.Fatalf("err = %v", err)
	}
	err = Decode([]byte(`{"devices":[`), &r)
	if err == nil || !strings.Contains(err.Error(), "unexpected end") {
		t.Fatalf("err = %v", err)
	}
	err = Decode([]byte(`{} {}`), &r)
	if err == nil || !strings.Contains(err.Error(), "more than one value") {
		t.Fatalf("err = %v", err)
	}
}

func TestPathsSortByIndex(t *testing.T) {
	if !pathLess("a[2].b", "a[10].b") || pathLess("a[10]", "a[9]") {
		t.Fatal("natural order broken")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"devices":[{"name":"a","interval":"5s","channels":[{"name":"x","scale":1}]}]}`))
	f.Add([]byte(`{"labels":{"a":"b"},"enabled":true}`))
	f.Add([]byte(`[1,2,{"x":null}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r rootT
		err := Decode(data, &r)
		if err != nil && err.Error() == "" {
			t.Fatal("empty error text")
		}
	})
}

func TestDuplicateKeyReported(t *testing.T) {
	var r rootT
	err := Decode([]byte(`{"enabled":true,"devices":[{"name":"a","name":"b"}],"enabled":false}`), &r)
	if err == nil || err.Error() != "devices[0].name: duplicate key\nenabled: duplicate key" {
		t.Fatalf("err = %v", err)
	}
}

func TestDeepNestingIsAnError(t *testing.T) {
	var r rootT
	doc := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	if err := Decode([]byte(doc), &r); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("err = %v", err)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "interval", "timeout", "channels", "unit", "rename", "deadband", "scale", "id"}
	for _, tc := range []struct{ in, want string }{
		{"intervall", "interval"}, // an extra letter
		{"chanels", "channels"},   // a missing one
		{"untis", "unit"},         // swapped and an extra one
		{"deadbnd", "deadband"},
		{"Timeout", "timeout"}, // case
		{"scael", "scale"},
		{"ip", "id"},      // one edit in two letters
		{"xy", ""},        // two edits in two letters are no typo
		{"frequency", ""}, // no typo of anything
		{"", ""},
	} {
		if got := Suggest(tc.in, keys); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	types := []string{"bool", "bit", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}
	if got := OneOf("float", types); got != `must be one of bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, not "float" (did you mean "float32"?)` {
		t.Errorf("OneOf = %s", got)
	}
	if got := DidYouMean("abcd", []string{"ABCD", "DCBA"}); got != ` (did you mean "ABCD"?)` {
		t.Errorf("DidYouMean(abcd) = %q", got)
	}
	if got := DidYouMean("zzz", types); got != "" {
		t.Errorf("DidYouMean(zzz) = %q", got)
	}
}

// TestResuggest: an unknown key reported by one reader of an object gets
// the suggestions of the keys another reader takes there.
func TestResuggest(t *testing.T) {
	type driverDev struct {
		UnitID int `json:"unit_id"`
	}
	var d driverDev
	var es Errors
	es.Merge("devices[0]", Decode([]byte(`{"intervall":"5s","unit_ix":1,"zzz":1}`), &d))
	es.Add("devices[0].other", "unknown field but not from the decoder")
	es.Resuggest(func(parent string) []string {
		if parent == "devices[0]" {
			return []string{"name", "interval"}
		}
		return nil
	})
	want := `devices[0].intervall: unknown field (did you mean "interval"?)
devices[0].unit_ix: unknown field (did you mean "unit_id"?)
devices[0].zzz: unknown field
devices[0].other: unknown field`
	if es.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", es, want)
	}
	err := WithKeys(Decode([]byte(`{"tpoic":"a/b","chanels":[]}`), &struct {
		Channels []int `json:"channels"`
	}{}), "topic")
	if err == nil || err.Error() != "chanels: unknown field (did you mean \"channels\"?)\ntpoic: unknown field (did you mean \"topic\"?)" {
		t.Errorf("WithKeys: %v", err)
	}
	if WithKeys(nil, "x") != nil {
		t.Error("WithKeys(nil) is not nil")
	}
	if got := Keys(&chanT{}); strings.Join(got, ",") != "name,scale" {
		t.Errorf("Keys = %v", got)
	}
	for path, want := range map[string][2]string{
		"a[1].b": {"a[1]", "b"}, "b": {"", "b"}, `a["x.y"]`: {"a", "x.y"}, "a[2]": {"a[2]", ""},
	} {
		if p, k := splitLast(path); p != want[0] || k != want[1] {
			t.Errorf("splitLast(%q) = %q, %q", path, p, k)
		}
	}
}

// TestEmbedded: the keys of an embedded struct without a json tag are
// the outer object's own, as in encoding/json; an outer field of the same
// name wins.
func TestEmbedded(t *testing.T) {
	type Shared struct {
		CA   string `json:"ca_file"`
		Name string `json:"name"`
		Need string `json:"need" strict:"required"`
	}
	type Outer struct {
		URL string `json:"url"`
		Shared
		Name int `json:"name"`
	}
	var o Outer
	if err := Decode([]byte(`{"url": "u", "ca_file": "/ca.pem", "name": 3, "need": "x"}`), &o); err != nil {
		t.Fatal(err)
	}
	if o.URL != "u" || o.CA != "/ca.pem" || o.Name != 3 || o.Need != "x" || o.Shared.Name != "" {
		t.Fatalf("decoded %+v", o)
	}
	err := Decode([]byte(`{"ca_fil": "/ca.pem"}`), &o)
	for _, want := range []string{`ca_fil: unknown field (did you mean "ca_file"?)`, "need: is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if got := strings.Join(Keys(Outer{}), ","); got != "url,ca_file,need,name" {
		t.Errorf("Keys = %s", got)
	}
}

// TestFormerName: a key's former name is refused with the new one.
func TestFormerName(t *testing.T) {
	var v struct {
		Insecure bool `json:"insecure" strict:"was=insecure_skip_verify"`
	}
	err := Decode([]byte(`{"insecure_skip_verify": true}`), &v)
	if err == nil || err.Error() != `insecure_skip_verify: is now called "insecure"` || v.Insecure {
		t.Fatalf("got %v, %+v", err, v)
	}
	if err := Decode([]byte(`{"insecure": true}`), &v); err != nil || !v.Insecure {
		t.Fatalf("got %v, %+v", err, v)
	}
}
