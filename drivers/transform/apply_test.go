package transform

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

func f64(v float64) *float64 { return &v }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		in      core.Reading
		want    core.Reading
		verdict Verdict
		reason  string
		errHas  string
	}{
		{
			name: "no transforms keeps the reading",
			in:   core.Reading{Device: "m", Channel: "c", Value: 1.5},
			want: core.Reading{Device: "m", Channel: "c", Value: 1.5},
		},
		{
			name: "scale and offset on a float",
			spec: Spec{Scale: f64(0.1), Offset: f64(-40)},
			in:   core.Reading{Value: 500.0},
			want: core.Reading{Value: 10.0},
		},
		{
			name: "scale turns an int64 into a float64",
			spec: Spec{Scale: f64(0.5)},
			in:   core.Reading{Value: int64(3)},
			want: core.Reading{Value: 1.5},
		},
		{
			name: "offset alone turns an int64 into a float64",
			spec: Spec{Offset: f64(1)},
			in:   core.Reading{Value: int64(3)},
			want: core.Reading{Value: 4.0},
		},
		{
			name: "int64 within range stays int64",
			spec: Spec{Min: f64(0), Max: f64(10)},
			in:   core.Reading{Value: int64(7)},
			want: core.Reading{Value: int64(7)},
		},
		{
			name: "bool passes scale and range unchanged",
			spec: Spec{Scale: f64(10), Min: f64(0), Max: f64(1)},
			in:   core.Reading{Value: true},
			want: core.Reading{Value: true},
		},
		{
			name: "string passes scale unchanged",
			spec: Spec{Scale: f64(10)},
			in:   core.Reading{Value: "on"},
			want: core.Reading{Value: "on"},
		},
		{
			name: "expression after scale sees the scaled value",
			spec: Spec{Scale: f64(2), Expr: "value + 1"},
			in:   core.Reading{Value: int64(5)},
			want: core.Reading{Value: 11.0},
		},
		{
			name: "expression sees an int64 as float64",
			spec: Spec{Expr: "value / 4"},
			in:   core.Reading{Value: int64(2)},
			want: core.Reading{Value: 0.5},
		},
		{
			name: "expression returning a bool",
			spec: Spec{Expr: "value > 20"},
			in:   core.Reading{Value: 25.0},
			want: core.Reading{Value: true},
		},
		{
			name: "expression returning a string from a bool",
			spec: Spec{Expr: `value ? "open" : "closed"`},
			in:   core.Reading{Value: false},
			want: core.Reading{Value: "closed"},
		},
		{
			name: "expression returning an int becomes int64",
			spec: Spec{Expr: "len(value)"},
			in:   core.Reading{Value: "abcd"},
			want: core.Reading{Value: int64(4)},
		},
		{
			name: "expression uses device and channel",
			spec: Spec{Expr: `device + "/" + channel`},
			in:   core.Reading{Device: "m1", Channel: "t", Value: 1.0},
			want: core.Reading{Device: "m1", Channel: "t", Value: "m1/t"},
		},
		{
			name:    "expression error drops as transform",
			spec:    Spec{Expr: "value * 2"},
			in:      core.Reading{Value: "text"},
			want:    core.Reading{Value: "text"},
			verdict: Dropped, reason: ReasonTransform, errHas: `expr "value * 2"`,
		},
		{
			name:    "expression returning an array drops as transform",
			spec:    Spec{Expr: "[value]"},
			in:      core.Reading{Value: 1.0},
			want:    core.Reading{Value: 1.0},
			verdict: Dropped, reason: ReasonTransform, errHas: "want a number, bool or string",
		},
		{
			name:    "expression returning nil drops as transform",
			spec:    Spec{Expr: "nil"},
			in:      core.Reading{Value: 1.0},
			want:    core.Reading{Value: 1.0},
			verdict: Dropped, reason: ReasonTransform, errHas: "gave nil",
		},
		{
			name:    "expression giving infinity drops as transform",
			spec:    Spec{Expr: "value / 0"},
			in:      core.Reading{Value: 1.0},
			want:    core.Reading{Value: math.Inf(1)},
			verdict: Dropped, reason: ReasonTransform, errHas: "not a finite number",
		},
		{
			name:    "NaN through scale drops as transform",
			spec:    Spec{Scale: f64(2)},
			in:      core.Reading{Value: math.NaN()},
			verdict: Dropped, reason: ReasonTransform, errHas: "not a finite number",
		},
		{
			name:    "below min drops as range",
			spec:    Spec{Min: f64(0), Max: f64(100)},
			in:      core.Reading{Channel: "t", Value: -0.5},
			want:    core.Reading{Channel: "t", Value: -0.5},
			verdict: Dropped, reason: ReasonRange, errHas: "value -0.5 outside range [0, 100]",
		},
		{
			name:    "above max only drops as range",
			spec:    Spec{Max: f64(100)},
			in:      core.Reading{Value: int64(101)},
			want:    core.Reading{Value: int64(101)},
			verdict: Dropped, reason: ReasonRange, errHas: "outside range max 100",
		},
		{
			name:    "NaN without scale drops as range",
			spec:    Spec{Min: f64(0)},
			in:      core.Reading{Value: math.NaN()},
			verdict: Dropped, reason: ReasonRange, errHas: "outside range min 0",
		},
		{
			name: "range applies after scale",
			spec: Spec{Scale: f64(0.1), Max: f64(100)},
			in:   core.Reading{Value: int64(1000)},
			want: core.Reading{Value: 100.0},
		},
		{
			name: "bounds are inclusive",
			spec: Spec{Min: f64(1), Max: f64(1)},
			in:   core.Reading{Value: 1.0},
			want: core.Reading{Value: 1.0},
		},
		{
			name: "rename and unit",
			spec: Spec{Rename: "energy", Unit: "kWh"},
			in:   core.Reading{Device: "m", Channel: "reg_40001", Value: 1.0, Unit: "Wh"},
			want: core.Reading{Device: "m", Channel: "energy", Value: 1.0, Unit: "kWh"},
		},
		{
			name: "bad reading gets only rename and unit",
			spec: Spec{Scale: f64(2), Expr: "value * 3", Min: f64(0), Max: f64(1), Rename: "x", Unit: "V"},
			in:   core.Reading{Channel: "c", Quality: core.Bad, Err: errBoom},
			want: core.Reading{Channel: "x", Unit: "V", Quality: core.Bad, Err: errBoom},
		},
		{
			name: "uncertain reading is transformed",
			spec: Spec{Scale: f64(2)},
			in:   core.Reading{Value: 2.0, Quality: core.Uncertain},
			want: core.Reading{Value: 4.0, Quality: core.Uncertain},
		},
		{
			name:    "dropped reading keeps its original channel name",
			spec:    Spec{Max: f64(0), Rename: "x"},
			in:      core.Reading{Channel: "c", Value: 1.0},
			want:    core.Reading{Channel: "c", Value: 1.0},
			verdict: Dropped, reason: ReasonRange, errHas: "outside range",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.spec)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			r := tt.in
			o := c.Apply(&r, t0)
			if o.Verdict != tt.verdict || o.Reason != tt.reason {
				t.Fatalf("outcome %v %q (%v), want %v %q", o.Verdict, o.Reason, o.Err, tt.verdict, tt.reason)
			}
			if tt.errHas != "" {
				if o.Err == nil || !strings.Contains(o.Err.Error(), tt.errHas) {
					t.Fatalf("error %v, want it to contain %q", o.Err, tt.errHas)
				}
			} else if o.Err != nil {
				t.Fatalf("unexpected error %v", o.Err)
			}
			if tt.verdict == Dropped && tt.want == (core.Reading{}) {
				return
			}
			if !sameReading(r, tt.want) {
				t.Fatalf("reading %+v, want %+v", r, tt.want)
			}
		})
	}
}

var errBoom = errors.New("boom")

func sameReading(a, b core.Reading) bool {
	av, bv := a.Value, b.Value
	a.Value, b.Value = nil, nil
	if a != b {
		return false
	}
	fa, aok := av.(float64)
	fb, bok := bv.(float64)
	if aok && bok {
		return fa == fb || math.Abs(fa-fb) < 1e-9 || math.IsInf(fa, 1) && math.IsInf(fb, 1)
	}
	return av == bv
}

func TestNilChain(t *testing.T) {
	c, err := New(Spec{})
	if err != nil || c != nil {
		t.Fatalf("New(empty) = %v, %v; want nil, nil", c, err)
	}
	r := core.Reading{Channel: "c", Value: int64(3)}
	if o := c.Apply(&r, t0); o.Verdict != Keep || r.Value != int64(3) || r.Channel != "c" {
		t.Fatalf("nil chain changed the reading: %v %+v", o, r)
	}
	if v, err := c.Inverse(2.5); err != nil || v != 2.5 {
		t.Fatalf("nil Inverse = %v, %v", v, err)
	}
	if c.Spec() != (Spec{}) {
		t.Fatal("nil Spec not empty")
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"bad expr", Spec{Expr: "value +"}, "expr: unexpected token EOF"},
		{"unknown variable", Spec{Expr: "valeu * 2"}, "expr: unknown name valeu"},
		{"bad inverse", Spec{Expr: "value*2", Inverse: "value /"}, "inverse: unexpected token"},
		{"inverse without expr", Spec{Inverse: "value"}, "inverse is set without expr"},
		{"min above max", Spec{Min: f64(2), Max: f64(1)}, "min 2 is greater than max 1"},
		{"negative deadband", Spec{Deadband: true, DeadbandAbs: -1}, "deadband must be a finite number >= 0"},
		{"both deadbands", Spec{Deadband: true, DeadbandAbs: 1, DeadbandPct: 1}, "absolute or percent, not both"},
		{"negative silence", Spec{Deadband: true, MaxSilence: -time.Second}, "max silence must not be negative"},
		{"NaN scale", Spec{Scale: f64(math.NaN())}, "scale must be a finite number"},
		{"infinite max", Spec{Max: f64(math.Inf(1))}, "max must be a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %v, want it to contain %q", err, tt.want)
			}
			if err2 := Check(tt.spec); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Check = %v, New = %v; want the same", err2, err)
			}
		})
	}
	// Without Deadband its numbers are ignored, so a pipeline can build a
	// chain without the deadband from the same Spec.
	if c, err := New(Spec{DeadbandAbs: -1, MaxSilence: time.Minute}); c != nil || err != nil {
		t.Fatalf("New(deadband off) = %v, %v; want nil, nil", c, err)
	}
	if err := Check(Spec{Expr: "value * 2", Inverse: "value / 2"}); err != nil {
		t.Fatalf("Check of a good spec: %v", err)
	}
}

func TestConcurrentApply(t *testing.T) {
	c, err := New(Spec{Scale: f64(2), Expr: "value + 1", Deadband: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	for g := 0; g < 4; g++ {
		go func() {
			kept := 0
			for i := 0; i < 500; i++ {
				r := core.Reading{Value: float64(i % 7)}
				switch c.Apply(&r, t0).Verdict {
				case Keep:
					if r.Value != float64(i%7)*2+1 {
						t.Errorf("%d became %v", i%7, r.Value)
					}
					kept++
				case Dropped:
					t.Errorf("%d dropped", i%7)
				}
			}
			done <- kept
		}()
	}
	total := 0
	for g := 0; g < 4; g++ {
		total += <-done
	}
	if total == 0 {
		t.Fatal("no reading kept")
	}
}

// TestScaleReusesRepeatedValue: a repeated scaled value is still right,
// including the sign of zero, which == alone would lose.
func TestScaleReusesRepeatedValue(t *testing.T) {
	negZero := math.Copysign(0, -1)
	// With an offset of -0, -0 stays -0 and 0 stays 0.
	c, err := New(Spec{Scale: f64(-1), Offset: &negZero})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ in, want float64 }{{2, -2}, {2, -2}, {3, -3}, {0, negZero}, {negZero, 0}, {0, negZero}, {2, -2}} {
		r := core.Reading{Value: tc.in}
		c.Apply(&r, t0)
		got, ok := r.Value.(float64)
		if !ok || math.Float64bits(got) != math.Float64bits(tc.want) {
			t.Fatalf("step %d: %v scaled to %v, want %v", i, tc.in, r.Value, tc.want)
		}
	}
}

func intp(n int) *int { return &n }

// TestDecimalValues: values come out as the decimals they stand for,
// compared exactly (no tolerance): a power-of-ten scale moves the decimal
// point, and decimals rounds as the value prints.
func TestDecimalValues(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, tc := range []struct {
		name string
		spec Spec
		in   any
		want any
	}{
		{"scale 0.1 on an integer", Spec{Scale: f64(0.1)}, int64(3), 0.3}, // 3 × 0.1 = 0.30000000000000004
		{"scale 0.01 on an integer", Spec{Scale: f64(0.01)}, int64(12345), 123.45},
		{"scale 0.1 on a float", Spec{Scale: f64(0.1)}, 230.1, 23.01}, // 230.1 × 0.1 = 23.009999999999998
		{"scale 10 on a float", Spec{Scale: f64(10)}, 1.1, 11.0},      // 1.1 × 10 = 11.000000000000002
		{"scale 0.001 then offset", Spec{Scale: f64(0.001), Offset: f64(-40)}, int64(60123), 20.123},
		{"offset is a decimal sum", Spec{Offset: f64(0.2)}, 230.1, 230.3}, // 230.29999999999998 in binary
		{"offset on a scaled float", Spec{Scale: f64(0.1), Offset: f64(-0.01)}, 230.1, 23.0},
		{"other factors multiply", Spec{Scale: f64(0.5)}, int64(3), 1.5},
		{"decimals rounds", Spec{Decimals: intp(1)}, 230.14, 230.1},
		{"decimals rounds half away from zero", Spec{Decimals: intp(2)}, 1.005, 1.01},
		{"decimals rounds negative half away from zero", Spec{Decimals: intp(1)}, -0.25, -0.3},
		{"decimals 0", Spec{Decimals: intp(0)}, 2.5, 3.0},
		{"decimals after an expression", Spec{Expr: "value / 3", Decimals: intp(3)}, 10.0, 3.333},
		{"decimals after scale", Spec{Scale: f64(3), Decimals: intp(1)}, 230.1, 690.3}, // 690.3000000000001 unrounded
		{"decimals leave an int64", Spec{Decimals: intp(1)}, int64(7), int64(7)},
		{"decimals leave a string", Spec{Decimals: intp(1)}, "7.25", "7.25"},
		{"decimals make -0 plain 0", Spec{Decimals: intp(1)}, -0.01, 0.0},
		{"decimals keep a huge value", Spec{Decimals: intp(3)}, 1e300, 1e300},
		{"negative zero is 0", Spec{Decimals: intp(1)}, negZero, 0.0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			r := core.Reading{Value: tc.in}
			if o := c.Apply(&r, t0); o.Verdict != Keep {
				t.Fatalf("verdict %v (%v)", o.Verdict, o.Err)
			}
			if r.Value != tc.want {
				t.Fatalf("%v (%T) became %v (%T), want %v exactly", tc.in, tc.in, r.Value, r.Value, tc.want)
			}
			if f, ok := r.Value.(float64); ok && f == 0 && math.Signbit(f) {
				t.Fatalf("%v became -0", tc.in)
			}
		})
	}
	// Rounding comes before the range filter: 100.04 rounds to 100.0,
	// inside max 100.
	c, _ := New(Spec{Decimals: intp(1), Max: f64(100)})
	r := core.Reading{Value: 100.04}
	if o := c.Apply(&r, t0); o.Verdict != Keep || r.Value != 100.0 {
		t.Fatalf("100.04 with decimals 1 and max 100: %v %v", o.Verdict, r.Value)
	}
	// A value with more places than a float64 holds for sure is summed in
	// binary.
	noisy := math.Nextafter(0.3, 1) // 0.30000000000000004
	c, _ = New(Spec{Offset: f64(0.25)})
	r = core.Reading{Value: noisy}
	if c.Apply(&r, t0); r.Value != noisy+0.25 {
		t.Fatalf("%v + 0.25 = %v, want the binary sum %v", noisy, r.Value, noisy+0.25)
	}
	// Writes undo a power-of-ten scale as a decimal shift too.
	c, _ = New(Spec{Scale: f64(0.1)})
	if v, err := c.Inverse(230.1); err != nil || v != 2301.0 {
		t.Fatalf("Inverse(230.1) through scale 0.1 = %v, %v; want 2301", v, err)
	}
	if _, err := New(Spec{Decimals: intp(16)}); err == nil || !strings.Contains(err.Error(), "decimals must be from 0 to 15, not 16") {
		t.Fatalf("decimals 16: %v", err)
	}
	if _, err := New(Spec{Decimals: intp(-1)}); err == nil {
		t.Fatal("decimals -1 accepted")
	}
}
