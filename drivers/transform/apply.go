package transform

import (
	"fmt"
	"math"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// Apply runs the chain on r, changing it in place, in this order:
// scale/offset, expression, decimals, range filter, deadband, rename, unit.
//
// Values: float64 and int64 are numbers. Scale/offset turns an int64 into
// a float64 (value*scale + offset); a scale that is a power of ten (0.1,
// 0.001, 1000) moves the decimal point (core.Shift), so 2301 scaled by 0.1
// is 230.1 and not 230.10000000000002. An expression sees any number as a
// float64 and may return a number, a bool or a string. Decimals rounds a
// float64 half away from zero, as the decimal it prints as (1.005 to two
// places is 1.01); int64, bools and strings pass unchanged. Bools and strings
// pass through scale/offset and the range filter unchanged; under a
// deadband they are reported when they change. A number that is NaN or
// infinite after scale/offset or the expression is dropped ("transform").
//
// A reading of Quality Bad is never dropped or suppressed: only rename and
// unit apply, and the deadband notes the change of quality so that the next
// good reading is reported.
//
// now is the time the deadband measures silence with (the pipeline's
// clock, not the device's timestamp).
//
// Apply allocates nothing for range, deadband, rename and unit. Scale and
// offset store a float64 in r.Value, which Go boxes (8 bytes) unless the
// result equals the chain's previous result (see box); an expression
// allocates what expr-lang needs.
func (c *Chain) Apply(r *core.Reading, now time.Time) Outcome {
	if c == nil {
		return Outcome{}
	}
	if r.Quality == core.Bad {
		if c.band != nil {
			c.mu.Lock()
			c.band.noteQuality(r.Quality)
			c.mu.Unlock()
		}
	} else if o := c.value(r, now); o.Verdict != Keep {
		return o
	}
	if c.spec.Rename != "" {
		r.Channel = c.spec.Rename
	}
	if c.spec.Unit != "" {
		r.Unit = c.spec.Unit
	}
	return Outcome{}
}

// value runs the steps that look at the value: scale/offset, expression,
// range and deadband.
func (c *Chain) value(r *core.Reading, now time.Time) Outcome {
	f, numeric := number(r.Value)
	if c.scaled && numeric {
		f = c.scaleOffset(f)
		r.Value = c.box(f)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return drop(ReasonTransform, fmt.Errorf("scale/offset gave %g, not a finite number", f))
		}
	}
	if c.fwd != nil {
		in := r.Value
		if numeric {
			in = f
		}
		out, err := c.run(r, in)
		if err != nil {
			return drop(ReasonTransform, err)
		}
		r.Value = out
		f, numeric = number(out)
		if numeric && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return drop(ReasonTransform, fmt.Errorf("expr %q gave %g, not a finite number", c.spec.Expr, f))
		}
	}
	if c.rounded {
		if x, ok := r.Value.(float64); ok {
			if y := round(x, c.decimals); y != x || math.Signbit(y) != math.Signbit(x) {
				f = y
				r.Value = c.box(f)
			}
		}
	}
	if c.ranged && numeric && !(f >= c.min && f <= c.max) {
		return drop(ReasonRange, fmt.Errorf("value %g outside range %s", f, c.rangeText()))
	}
	if c.band != nil {
		c.mu.Lock()
		report := c.band.report(r.Value, f, numeric, r.Quality, now)
		c.mu.Unlock()
		if !report {
			return Outcome{Verdict: Suppressed}
		}
	}
	return Outcome{}
}

func (c *Chain) rangeText() string {
	switch {
	case c.spec.Min != nil && c.spec.Max != nil:
		return fmt.Sprintf("[%g, %g]", c.min, c.max)
	case c.spec.Min != nil:
		return fmt.Sprintf("min %g", c.min)
	}
	return fmt.Sprintf("max %g", c.max)
}

func drop(reason string, err error) Outcome {
	return Outcome{Verdict: Dropped, Reason: reason, Err: err}
}

// scaleOffset is value*scale + offset, in decimal where it can be: a
// power-of-ten scale moves the decimal point (core.Shift), and the offset
// is added as a decimal sum: the binary sum is rounded to the decimal
// places of its two terms (their shortest representations), so that
// 60123 × 0.001 − 40 is 20.123 and not 20.122999999999998.
func (c *Chain) scaleOffset(f float64) float64 {
	places := -1 // not known yet
	if c.scalePow10 {
		f, places = core.ShiftPlaces(f, c.scaleExp)
	} else {
		f *= c.scale
	}
	if c.offset == 0 {
		return f
	}
	sum := f + c.offset
	if c.offPlaces > core.MaxPlaces {
		return sum
	}
	if places < 0 {
		places = core.Places(f)
	}
	p := max(places, c.offPlaces)
	if p > core.MaxPlaces || p == 0 {
		return sum
	}
	// The decimal sum has at most p places, so sum × 10ᵖ is within a tiny
	// fraction of a whole number N while |N| < 2⁵⁰; N / 10ᵖ is then the
	// float64 nearest to the decimal.
	m := sum * core.Pow10(p)
	if math.IsNaN(m) || math.Abs(m) >= 1<<50 {
		return sum
	}
	if d := math.Round(m) / core.Pow10(p); d != 0 {
		return d
	}
	return 0
}

// round rounds f to n decimal places, half away from zero, taking f as
// the decimal it prints as: the point is moved n places (core.Shift), the
// result rounded to a whole number and the point moved back. A negative
// zero becomes 0; a value too large to have decimals is returned as is.
func round(f float64, n int) float64 {
	s := core.Shift(f, n)
	if math.IsNaN(s) || math.Abs(s) >= 1<<52 {
		return f
	}
	r := core.Shift(math.Round(s), -n)
	if r == 0 {
		return 0
	}
	return r
}

// number returns v as a float64 when it is a number (float64 or int64).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// box returns f as an interface value. Go allocates 8 bytes to box a
// float64; a channel whose scaled value repeats (a static register, a
// counter between increments) reuses the previous box instead. Boxed values
// are immutable, so sharing one between readings is safe.
func (c *Chain) box(f float64) any {
	if prev := c.last.Load(); prev != nil {
		if x, ok := prev.(float64); ok && math.Float64bits(x) == math.Float64bits(f) {
			return prev
		}
	}
	v := any(f)
	c.last.Store(v)
	return v
}
