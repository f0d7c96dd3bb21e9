package transform

import (
	"errors"
	"fmt"
	"math"

	"github.com/osgate/osgate/drivers/core"
)

// Inverse maps a value to be written (as the channel is exported) back to
// what the device takes: the inverse expression first, then
// (value - offset) / scale (a decimal shift when scale is a power of ten).
// Decimals, range, deadband, rename and unit have no inverse and are
// ignored. A nil chain returns v unchanged.
//
// A channel with an expression is writable only when its Spec names an
// Inverse; with scale 0 it is not writable at all. In an inverse
// expression, device and channel are empty.
func (c *Chain) Inverse(v any) (any, error) {
	if c == nil {
		return v, nil
	}
	v, err := normalise(v)
	if err != nil {
		return nil, fmt.Errorf("write: value %w", err)
	}
	if f, ok := number(v); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil, fmt.Errorf("write: value %g is not a finite number", f)
	}
	if c.fwd != nil {
		if c.inv == nil {
			return nil, errors.New("not writable through an expression without an inverse")
		}
		if f, ok := number(v); ok {
			v = f
		}
		c.mu.Lock()
		v, err = c.eval(c.inv, c.spec.Inverse, v, "", "")
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("inverse: %w", err)
		}
	}
	if !c.scaled {
		return v, nil
	}
	f, ok := number(v)
	if !ok {
		return nil, fmt.Errorf("cannot write a %T through scale/offset: it needs a number", v)
	}
	if c.scale == 0 {
		return nil, errors.New("not writable: scale is 0, so every value maps to the offset")
	}
	var out float64
	if c.scalePow10 {
		out = core.Shift(f-c.offset, -c.scaleExp)
	} else {
		out = (f - c.offset) / c.scale
	}
	if math.IsNaN(out) || math.IsInf(out, 0) {
		return nil, fmt.Errorf("write: %g through scale/offset gives %g, not a finite number", f, out)
	}
	return out, nil
}
