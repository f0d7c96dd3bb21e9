package mapping

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

// refMatch is MQTT topic matching written the slow, obvious way, to check
// Filter.Match against: "+" (and a capture) is one level, "{x...}" one or
// more, "#" any number at the end.
func refMatch(filter, topic string) bool {
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (fl[0] == "+" || fl[0] == "#" || isCapture(fl[0])) {
		return false
	}
	return refLevels(fl, tl)
}

func isCapture(level string) bool {
	return strings.HasPrefix(level, "{") && strings.HasSuffix(level, "}")
}

func refLevels(fl, tl []string) bool {
	if len(fl) == 0 {
		return len(tl) == 0
	}
	switch f := fl[0]; {
	case f == "#":
		return true
	case isCapture(f) && strings.HasSuffix(f, "...}"):
		for n := 1; n <= len(tl); n++ {
			if refLevels(fl[1:], tl[n:]) {
				return true
			}
		}
		return false
	case len(tl) == 0:
		return false
	case f == "+" || isCapture(f) || f == tl[0]:
		return refLevels(fl[1:], tl[1:])
	}
	return false
}

func FuzzFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"site/{site}/meter/{device}/+", "site/a/meter/m7/power"},
		{"a/#", "a"},
		{"#", "$SYS/x"},
		{"+/+", "/"},
		{"{a}/{b}/#", "x/y"},
		{"a/{x}y", "a/b"},
		{"", ""},
		{"a//b", "a//b"},
		{"zigbee2mqtt/{device...}", "zigbee2mqtt/floor1/living_room"},
		{"z/{d...}/availability", "z/a/b/availability"},
		{"{a}/{d...}/+/{c}", "1/2/3/4/5"},
		{"{d...}", "$x/y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		flt, err := ParseFilter(pattern)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		caps, ok := flt.Match(topic, nil)
		if want := refMatch(pattern, topic); ok != want {
			t.Fatalf("%q matching %q = %v, reference says %v", pattern, topic, ok, want)
		}
		sub := flt.Subscription()
		if ok && !refMatch(sub, topic) {
			t.Fatalf("%q matches %q but its subscription %q does not", pattern, topic, sub)
		}
		if len(caps) != len(flt.Captures()) {
			t.Fatalf("%d captures for %d names", len(caps), len(flt.Captures()))
		}
		if ok {
			// Putting the captures back into the filter gives the topic
			// (up to "+" and "#", which keep nothing).
			levels := strings.Split(pattern, "/")
			plain := true
			for i, l := range levels {
				switch {
				case l == "+" || l == "#":
					plain = false
				case isCapture(l):
					name := strings.TrimSuffix(l[1:len(l)-1], "...")
					c := caps[slices.Index(flt.Captures(), name)]
					if !strings.HasSuffix(l, "...}") && strings.Contains(c, "/") {
						t.Fatalf("capture {%s} = %q spans levels", name, c)
					}
					levels[i] = c
				}
			}
			if plain && strings.Join(levels, "/") != topic {
				t.Fatalf("%q matched %q with captures %q, which rebuild %q", pattern, topic, caps, strings.Join(levels, "/"))
			}
		}
		if _, err := ParseFilter(sub); err != nil {
			t.Fatalf("subscription %q of %q does not parse: %v", sub, pattern, err)
		}
	})
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{"a.b[0].c", `["x.y"][1]`, "a[-1]", "", "a..b", `a["\u0041"]`, "[", "a]"} {
		f.Add(s)
	}
	doc, _ := decodeJSON([]byte(`{"a":{"b":[1,{"c":2}]},"x.y":[3,4]}`))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("String() = %q, want %q", p.String(), s)
		}
		p.Lookup(doc)
	})
}

// fuzzMappings are mappings of every kind the fuzzer throws payloads at.
func fuzzMappings(t testing.TB) []*Mapping {
	flt, err := ParseFilter("s/{device}/{ch}")
	if err != nil {
		t.Fatal(err)
	}
	var ms []*Mapping
	for _, spec := range []Spec{
		{Channels: []ChannelSpec{{Name: "{ch}", Path: "v"}, {Name: "x", Path: "a.b[-1]", Type: Int}, {Name: "y", Path: "a.b[0]", Type: Bool}}},
		{Device: "{json:id}", Time: &TimeSpec{Path: "ts", Format: "unix_ms"}, Channels: []ChannelSpec{{Name: "{json:n}", Path: "v", Type: Float}}},
		{Time: &TimeSpec{Path: "t"}, Channels: []ChannelSpec{{Each: strp("")}, {Each: strp("arr"), Name: "a{key}", Type: String}}},
		{Time: &TimeSpec{Path: "t", Format: "2006-01-02 15:04"}, Channels: []ChannelSpec{{Name: "whole"}}},
		{Payload: "text", Channels: []ChannelSpec{{Name: "{ch}"}, {Name: "b", Type: Bool}, {Name: "i", Type: Int}}},
		{Time: &TimeSpec{Path: "Time", Zone: "Europe/Berlin"}, Channels: []ChannelSpec{{Each: strp("ENERGY"), Units: map[string]string{"Voltage": "V", "0": "x"}}}},
		{Time: &TimeSpec{Path: "t", Format: "02.01.2006 15:04", Zone: "America/New_York"}, Channels: []ChannelSpec{{Name: "whole"}}},
	} {
		m, err := Compile(flt, spec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

func FuzzReadings(f *testing.F) {
	for _, s := range []string{
		`{"v":1.5,"a":{"b":[true,7]}}`,
		`{"id":"m1","n":"p","v":"12","ts":1764072000123}`,
		`{"t":"2026-11-24T13:41:00Z","x":1,"arr":[1,"a",null,{}]}`,
		`{"t":"2026-11-24 13:41","whole":1}`,
		`21.5`, `true`, `"str"`, `null`, `[]`, `{`, `{"a":1}{`, "\xff", ``,
		`{"id":"","n":"p","v":1}`, `{"id":{"x":1},"n":"p","v":1}`,
		`{"ts":"1e400","id":"a","n":"b","v":1}`, `{"v":1e400}`,
		`{"Time":"2026-11-24T13:41:00","ENERGY":{"Voltage":230,"Current":0.5}}`,
		`{"Time":"2026-03-29T02:30:00","ENERGY":[1,2]}`, // a time Berlin skips
		`{"Time":"2026-10-25T02:30:00.5+02:00","ENERGY":{}}`,
		`{"t":"08.03.2026 02:30","whole":1}`, `{"t":"1999-12-31T23:59:59"}`,
	} {
		f.Add(s)
	}
	var ms []*Mapping
	f.Fuzz(func(t *testing.T, payload string) {
		if ms == nil {
			ms = fuzzMappings(t)
		}
		for _, m := range ms {
			caps, ok := m.Match("s/dev/chan", nil)
			if !ok {
				t.Fatal("no match")
			}
			rs, err := m.Readings(caps, []byte(payload), arrival, nil)
			if err != nil {
				if !errors.Is(err, ErrPayload) {
					t.Fatalf("error %v does not wrap ErrPayload", err)
				}
				continue
			}
			for _, r := range rs {
				checkReading(t, r)
			}
		}
	})
}

func checkReading(t *testing.T, r core.Reading) {
	t.Helper()
	if r.Device == "" || r.Channel == "" {
		t.Fatalf("reading without a name: %+v", r)
	}
	if r.Time.IsZero() || r.Time.Year() < 2000 {
		t.Fatalf("reading at %v", r.Time)
	}
	if r.Quality == core.Bad {
		if r.Err == nil || r.Value != nil {
			t.Fatalf("bad reading %+v", r)
		}
		return
	}
	switch r.Value.(type) {
	case float64, int64, bool, string:
	default:
		t.Fatalf("value %v is %T", r.Value, r.Value)
	}
}
