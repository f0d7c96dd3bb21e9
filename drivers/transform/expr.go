package transform

import (
	"fmt"
	"math"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/osgate/osgate/drivers/core"
)

// env is what an expression sees: value (a float64 for numbers, else the
// bool or string as read), device and channel (the names as the driver
// reported them).
type env struct {
	Value   any    `expr:"value"`
	Device  string `expr:"device"`
	Channel string `expr:"channel"`
}

// compile compiles one expression against env. Unknown names are errors.
func compile(src string) (*vm.Program, error) {
	p, err := expr.Compile(src, expr.Env(&env{}))
	if err != nil {
		return nil, err
	}
	return p, nil
}

// run evaluates the forward expression for r with value in.
func (c *Chain) run(r *core.Reading, in any) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eval(c.fwd, c.spec.Expr, in, r.Device, r.Channel)
}

// eval runs p with the given variables and normalises its result to
// float64, int64, bool or string. The caller holds c.mu.
func (c *Chain) eval(p *vm.Program, src string, value any, device, channel string) (any, error) {
	c.env = env{Value: value, Device: device, Channel: channel}
	out, err := c.m.Run(p, &c.env)
	c.env = env{}
	if err != nil {
		return nil, fmt.Errorf("expr %q: %w", src, err)
	}
	v, err := normalise(out)
	if err != nil {
		return nil, fmt.Errorf("expr %q: %w", src, err)
	}
	return v, nil
}

// normalise maps an expression's result onto the value types a Reading
// may hold.
func normalise(v any) (any, error) {
	switch x := v.(type) {
	case float64, int64, bool, string:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return float64(x), nil
		}
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return float64(x), nil
		}
		return int64(x), nil
	case float32:
		return core.Float32(x), nil
	case nil:
		return nil, fmt.Errorf("gave nil, want a number, bool or string")
	}
	return nil, fmt.Errorf("gave a %T, want a number, bool or string", v)
}
