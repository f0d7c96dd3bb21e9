package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/osgate/osgate/drivers/core"
)

var t0 = time.Date(2026, 11, 24, 13, 41, 0, 123456789, time.UTC)

func TestEncode(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	cases := []struct {
		name string
		in   []core.Reading
		want string
	}{{
		name: "architecture example",
		in: []core.Reading{
			{Channel: "voltage_l1", Value: 230.1, Unit: "V", Time: t0.Add(-time.Second)},
			core.BadReading("m", "energy", t0, errors.New("timeout")),
		},
		want: `{"ts":"2026-11-24T13:41:00.123Z","values":{"voltage_l1":230.1,"energy":null},"quality":{"energy":"bad"},"errors":{"energy":"timeout"},"units":{"voltage_l1":"V"}}`,
	}, {
		name: "types",
		in: []core.Reading{
			{Channel: "i", Value: int64(-42), Time: t0.In(berlin)},
			{Channel: "b", Value: true, Time: t0},
			{Channel: "s", Value: "on\n\"x\"", Time: t0},
			{Channel: "big", Value: 1e21, Time: t0},
			{Channel: "small", Value: 1e-7, Time: t0},
			{Channel: "zero", Value: 0.0, Time: t0},
			{Channel: "nan", Value: math.NaN(), Time: t0},
			{Channel: "inf", Value: math.Inf(-1), Time: t0},
			{Channel: "u", Value: 1.5, Quality: core.Uncertain, Time: t0},
			{Channel: "nil", Time: t0},
		},
		want: `{"ts":"2026-11-24T13:41:00.123Z","values":{"i":-42,"b":true,"s":"on\n\"x\"","big":1e+21,"small":1e-7,"zero":0,"nan":null,"inf":null,"u":1.5,"nil":null},"quality":{"u":"uncertain"}}`,
	}, {
		name: "escaped names",
		in:   []core.Reading{{Channel: "a\"b\\c\x01\u2028\xff", Value: 1.0, Unit: "°C", Time: t0}},
		want: `{"ts":"2026-11-24T13:41:00.123Z","values":{"a\"b\\c\u0001\u2028\ufffd":1},"units":{"a\"b\\c\u0001\u2028\ufffd":"°C"}}`,
	}, {
		name: "bad without error",
		in:   []core.Reading{{Channel: "x", Quality: core.Bad, Value: 3.0, Time: t0}},
		want: `{"ts":"2026-11-24T13:41:00.123Z","values":{"x":null},"quality":{"x":"bad"},"errors":{"x":"unknown error"}}`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(Encode(nil, c.in))
			// The section order is ours to choose; compare as JSON and as text.
			if !jsonEqual(t, got, c.want) {
				t.Fatalf("Encode:\n got %s\nwant %s", got, c.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("not valid JSON: %s", got)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("unmarshal want %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestEncodeAppends(t *testing.T) {
	dst := []byte("prefix")
	got := Encode(dst, []core.Reading{{Channel: "a", Value: 1.0, Time: t0}})
	if !strings.HasPrefix(string(got), "prefix{") {
		t.Fatalf("Encode did not append to dst: %s", got)
	}
}

func TestEncodeFloatsRoundTrip(t *testing.T) {
	for _, f := range []float64{0.1, 230.1, -1e-300, 5e-324, math.MaxFloat64, 123456789012345680000, 1e20, 1e-6, 0.3 - 0.1} {
		out := Encode(nil, []core.Reading{{Channel: "v", Value: f, Time: t0}})
		var m struct{ Values map[string]float64 }
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%v: %s: %v", f, out, err)
		}
		if m.Values["v"] != f {
			t.Errorf("%v encoded as %s reads back as %v", f, out, m.Values["v"])
		}
	}
}

func TestTopic(t *testing.T) {
	cases := []struct{ tmpl, gw, dev, want string }{
		{"telemetry/{gateway}/{device}", "gw-0001", "meter-1", "telemetry/gw-0001/meter-1"},
		{"{device}/{device}", "g", "d", "d/d"},
		{"a/{other}/{gateway", "g", "d", "a/{other}/{gateway"},
		{"t/{gateway}/{device}", "g+#", "x\x00{device}", "t/g__/x_{device}"},
	}
	for _, c := range cases {
		if got := Topic(c.tmpl, c.gw, c.dev); got != c.want {
			t.Errorf("Topic(%q, %q, %q) = %q, want %q", c.tmpl, c.gw, c.dev, got, c.want)
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("voltage", "V", 230.1, int64(3), "on", "timeout", uint8(0))
	f.Add("a\"\\\x00\u2028", "°C", math.NaN(), int64(-1), "\xff\xfe", "", uint8(2))
	f.Add("", "", math.Inf(1), int64(math.MinInt64), "\n", "x\ty", uint8(1))
	f.Fuzz(func(t *testing.T, name, unit string, fv float64, iv int64, sv, errText string, q uint8) {
		qual := core.Quality(q % 3)
		rs := []core.Reading{
			{Channel: name, Value: fv, Unit: unit, Time: t0, Quality: qual},
			{Channel: name + "i", Value: iv, Time: t0},
			{Channel: sv, Value: sv, Unit: sv, Time: t0},
			{Channel: "e", Quality: core.Bad, Err: errors.New(errText), Time: t0},
		}
		out := Encode(nil, rs)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %q", out)
		}
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8: %q", out)
		}
		var m struct {
			Values map[string]any    `json:"values"`
			Errors map[string]string `json:"errors"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(errText) && !strings.ContainsAny(errText, "\u2028\u2029") && m.Errors["e"] != errText {
			t.Fatalf("error text %q came back as %q", errText, m.Errors["e"])
		}
	})
}

func FuzzTopic(f *testing.F) {
	f.Add("telemetry/{gateway}/{device}", "gw", "dev")
	f.Add("{", "+", "#")
	f.Fuzz(func(t *testing.T, tmpl, gw, dev string) {
		got := Topic(tmpl, gw, dev)
		if !strings.ContainsAny(tmpl, "+#\x00") && strings.ContainsAny(got, "+#\x00") {
			t.Fatalf("Topic(%q, %q, %q) = %q carries a wildcard", tmpl, gw, dev, got)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	rs := []core.Reading{
		{Channel: "voltage_l1", Value: 230.1, Unit: "V", Time: t0},
		{Channel: "voltage_l2", Value: 229.8, Unit: "V", Time: t0},
		{Channel: "voltage_l3", Value: 231.4, Unit: "V", Time: t0},
		{Channel: "current_l1", Value: 12.25, Unit: "A", Time: t0},
		{Channel: "power", Value: int64(8450), Unit: "W", Time: t0},
		{Channel: "relay", Value: true, Time: t0},
		core.BadReading("m", "energy", t0, errors.New("timeout")),
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = Encode(buf[:0], rs)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodePoll1000 is one poll of the Modbus benchmarks: 1,000
// registers, each an int64 without a unit, all good.
func BenchmarkEncodePoll1000(b *testing.B) {
	rs := make([]core.Reading, 1000)
	for i := range rs {
		rs[i] = core.Reading{Device: "plc", Channel: fmt.Sprintf("r%d", i), Value: int64(i * 37), Time: t0, Quality: core.Good}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = Encode(buf[:0], rs)
	}
	b.SetBytes(int64(len(buf)))
}
