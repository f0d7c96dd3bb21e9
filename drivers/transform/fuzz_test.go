package transform

import (
	"math"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// FuzzApply compiles arbitrary expressions and runs arbitrary values
// through them: nothing may panic, a compile error has text, and a kept
// reading holds one of the four value types. With decimals, a kept
// float has at most that many decimal places.
func FuzzApply(f *testing.F) {
	f.Add("value * 2", "", 1.5, int64(3), "x", true, 0.1, 1.0, int8(-1))
	f.Add("value > 20 ? \"hot\" : \"ok\"", "", 25.0, int64(-1), "", false, 1.0, 0.0, int8(2))
	f.Add("value * 9 / 5 + 32", "(value - 32) * 5 / 9", 0.0, int64(0), "on", true, 2.0, -3.0, int8(1))
	f.Add("len(value)", "", math.Inf(1), int64(math.MaxInt64), "abc", false, 0.0, 0.0, int8(0))
	f.Add("[value]", "value", math.NaN(), int64(math.MinInt64), "", true, -1.0, 1e308, int8(15))
	f.Add("value +", "", 1.0, int64(1), "", true, 1.0, 1.0, int8(16))
	f.Add("device + channel", "nil", 1.0, int64(1), "s", false, 1.0, 1.0, int8(-1))
	f.Add("", "", 3.0, int64(1), "", false, 1e-320, 5.0, int8(3))
	f.Add("", "", 60.123, int64(2301), "", false, 0.001, -40.0, int8(-1))
	f.Add("value / 3", "", 230.1, int64(-7), "", false, 0.1, 0.05, int8(4))
	f.Fuzz(func(t *testing.T, ex, inv string, fv float64, iv int64, sv string, bv bool, scale, offset float64, decimals int8) {
		spec := Spec{Expr: ex, Inverse: inv, Scale: &scale, Offset: &offset, Min: f64(-1e6), Max: f64(1e6),
			Deadband: true, DeadbandAbs: 0.5, MaxSilence: time.Second}
		if decimals >= 0 {
			n := int(decimals)
			spec.Decimals = &n
		}
		c, err := New(spec)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without text")
			}
			return
		}
		for i, v := range []any{fv, iv, sv, bv, nil} {
			q := core.Good
			if v == nil {
				q = core.Bad
			}
			r := core.Reading{Device: "d", Channel: "c", Value: v, Quality: q}
			o := c.Apply(&r, t0.Add(time.Duration(i)*time.Second))
			switch o.Verdict {
			case Keep:
				switch x := r.Value.(type) {
				case float64:
					if spec.Decimals != nil && *spec.Decimals <= MaxDecimals && math.Abs(x) < 1e6 && core.Places(x) > *spec.Decimals {
						t.Fatalf("%v rounded to %d decimals is %v", v, *spec.Decimals, x)
					}
				case int64, bool, string:
				case nil:
					if q != core.Bad {
						t.Fatalf("kept nil value from %v", v)
					}
				default:
					t.Fatalf("kept a %T", r.Value)
				}
			case Dropped:
				if o.Err == nil || o.Err.Error() == "" || (o.Reason != ReasonRange && o.Reason != ReasonTransform) {
					t.Fatalf("drop without reason or error: %+v", o)
				}
			}
			if _, err := c.Inverse(v); err != nil && err.Error() == "" {
				t.Fatal("inverse error without text")
			}
		}
	})
}
