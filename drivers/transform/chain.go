package transform

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr/vm"

	"github.com/osgate/osgate/drivers/core"
)

// MaxDecimals is the most decimal places Decimals may keep: a float64
// holds 15 to 17 significant digits, so more would round nothing.
const MaxDecimals = core.MaxPlaces

// Chain is one channel's compiled transforms and its deadband state.
//
// A nil *Chain is valid and means "no transforms": Apply keeps every
// reading unchanged and Inverse returns the value as given. New returns nil
// for an empty Spec, so a pipeline pays nothing for channels without
// transforms. A Chain is safe for concurrent use.
type Chain struct {
	spec Spec
	// scaled is set when scale or offset is configured.
	scaled        bool
	scale, offset float64
	// scaleExp is e when scale is 10ᵉ: scaling is then a decimal shift
	// (core.Shift), so 2301 × 0.1 is 230.1.
	scaleExp   int
	scalePow10 bool
	// offPlaces is the decimal places of offset.
	offPlaces int
	// decimals is the rounding, when rounded is set.
	decimals int
	rounded  bool
	min, max float64
	ranged   bool
	// last is the previous scaled value, boxed (see box).
	last atomic.Value

	// mu guards the expression machine and the deadband state.
	mu   sync.Mutex
	fwd  *vm.Program
	inv  *vm.Program
	m    vm.VM
	env  env
	band *deadband
}

// New checks and compiles spec once. It returns nil (a valid, empty chain)
// when spec configures nothing.
func New(spec Spec) (*Chain, error) {
	if err := validate(spec); err != nil {
		return nil, err
	}
	if !spec.Deadband {
		// The deadband's numbers mean nothing without it.
		spec.DeadbandAbs, spec.DeadbandPct, spec.MaxSilence = 0, 0, 0
	}
	if spec == (Spec{}) {
		return nil, nil
	}
	c := &Chain{spec: spec, scale: 1, min: math.Inf(-1), max: math.Inf(1)}
	if spec.Scale != nil {
		c.scaled, c.scale = true, *spec.Scale
	}
	c.scaleExp, c.scalePow10 = core.Pow10Exponent(c.scale)
	if spec.Decimals != nil {
		c.rounded, c.decimals = true, *spec.Decimals
	}
	if spec.Offset != nil {
		c.scaled, c.offset = true, *spec.Offset
		c.offPlaces = core.Places(c.offset)
	}
	if spec.Min != nil {
		c.ranged, c.min = true, *spec.Min
	}
	if spec.Max != nil {
		c.ranged, c.max = true, *spec.Max
	}
	var err error
	if spec.Expr != "" {
		if c.fwd, err = compile(spec.Expr); err != nil {
			return nil, fmt.Errorf("expr: %w", err)
		}
	}
	if spec.Inverse != "" {
		if c.inv, err = compile(spec.Inverse); err != nil {
			return nil, fmt.Errorf("inverse: %w", err)
		}
	}
	if spec.Deadband {
		c.band = &deadband{abs: spec.DeadbandAbs, pct: spec.DeadbandPct, silence: spec.MaxSilence}
	}
	return c, nil
}

// Check reports whether spec would build a Chain: the numbers make sense and
// the expressions compile. Config validation uses it; it keeps no state.
func Check(spec Spec) error {
	_, err := New(spec)
	return err
}

// validate checks the combinations New cannot work with.
func validate(s Spec) error {
	var errs []error
	for _, p := range []struct {
		name string
		v    *float64
	}{{"scale", s.Scale}, {"offset", s.Offset}, {"min", s.Min}, {"max", s.Max}} {
		if p.v != nil && (math.IsNaN(*p.v) || math.IsInf(*p.v, 0)) {
			errs = append(errs, fmt.Errorf("%s must be a finite number", p.name))
		}
	}
	if s.Decimals != nil && (*s.Decimals < 0 || *s.Decimals > MaxDecimals) {
		errs = append(errs, fmt.Errorf("decimals must be from 0 to %d, not %d", MaxDecimals, *s.Decimals))
	}
	if s.Min != nil && s.Max != nil && *s.Min > *s.Max {
		errs = append(errs, fmt.Errorf("min %g is greater than max %g", *s.Min, *s.Max))
	}
	if s.Inverse != "" && s.Expr == "" {
		errs = append(errs, errors.New("inverse is set without expr"))
	}
	if s.Deadband {
		if !(s.DeadbandAbs >= 0) || math.IsInf(s.DeadbandAbs, 0) || !(s.DeadbandPct >= 0) || math.IsInf(s.DeadbandPct, 0) {
			errs = append(errs, errors.New("deadband must be a finite number >= 0"))
		}
		if s.DeadbandAbs > 0 && s.DeadbandPct > 0 {
			errs = append(errs, errors.New("deadband is absolute or percent, not both"))
		}
		if s.MaxSilence < 0 {
			errs = append(errs, errors.New("deadband max silence must not be negative"))
		}
	}
	return errors.Join(errs...)
}

// Spec returns the configuration the chain was built from (the zero Spec
// for a nil chain).
func (c *Chain) Spec() Spec {
	if c == nil {
		return Spec{}
	}
	return c.spec
}
