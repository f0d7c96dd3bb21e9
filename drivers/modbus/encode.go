package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// encodeRegisters turns a value the core hands to Write (already through
// the channel's inverse transform: float64, int64, bool or string) into the
// channel's registers as they go on the wire.
func encodeRegisters(ch *channel, v any) ([]byte, error) {
	var be [8]byte
	switch ch.typ {
	case typeString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("encode: a string channel takes a string, not %T", v)
		}
		if len(s) > ch.length {
			return nil, fmt.Errorf("encode: %q is longer than the channel's %d bytes", s, ch.length)
		}
		b := make([]byte, 2*ch.width)
		copy(b, s)
		if ch.order&swapBytes != 0 {
			for i := 0; i+1 < len(b); i += 2 {
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
		return b, nil
	case typeFloat32:
		f, err := toFloat(v)
		if err != nil {
			return nil, err
		}
		if math.Abs(f) > math.MaxFloat32 && !math.IsInf(f, 0) {
			return nil, fmt.Errorf("encode: %g does not fit a float32", f)
		}
		binary.BigEndian.PutUint32(be[:], math.Float32bits(float32(f)))
	case typeFloat64:
		f, err := toFloat(v)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint64(be[:], math.Float64bits(f))
	case typeInt16, typeUint16, typeInt32, typeUint32, typeInt64, typeUint64:
		lo, hi := intRange(ch.typ)
		if err := putInt(be[:], v, ch.typ, lo, hi); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("encode: type %s is not written as registers", ch.typ)
	}
	n := 2 * ch.width
	// be holds the value big-endian in its first n bytes; applying the same
	// swaps again puts it in the channel's order (each swap is its own inverse).
	out := make([]byte, n)
	reorder(out, be[:n], ch.order)
	return out, nil
}

// intRange is the range of an integer type, as float64 bounds for checks.
func intRange(t dataType) (lo, hi float64) {
	switch t {
	case typeInt16:
		return math.MinInt16, math.MaxInt16
	case typeUint16:
		return 0, math.MaxUint16
	case typeInt32:
		return math.MinInt32, math.MaxInt32
	case typeUint32:
		return 0, math.MaxUint32
	case typeInt64:
		return math.MinInt64, math.MaxInt64
	}
	return 0, math.MaxUint64
}

func putInt(be []byte, v any, t dataType, lo, hi float64) error {
	var u uint64
	switch x := v.(type) {
	case int64:
		if float64(x) < lo || float64(x) > hi || (t == typeUint64 && x < 0) {
			return fmt.Errorf("encode: %d is out of range for %s", x, t)
		}
		u = uint64(x)
	case float64:
		r := math.Round(x)
		if math.IsNaN(x) || r < lo || r > hi || (t == typeInt64 && r >= math.MaxInt64) || (t == typeUint64 && r >= math.MaxUint64) {
			return fmt.Errorf("encode: %g is out of range for %s", x, t)
		}
		if t == typeUint64 {
			u = uint64(r)
		} else {
			u = uint64(int64(r))
		}
	default:
		return fmt.Errorf("encode: %s takes a number, not %T", t, v)
	}
	switch t.registers() {
	case 1:
		binary.BigEndian.PutUint16(be, uint16(u))
	case 2:
		binary.BigEndian.PutUint32(be, uint32(u))
	default:
		binary.BigEndian.PutUint64(be, u)
	}
	return nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("encode: a float channel takes a number, not %T", v)
}

// toBool accepts a bool, or the numbers 0 and 1 (a scaled coil arrives as
// a number after the inverse transform).
func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	}
	return false, fmt.Errorf("encode: a bit takes true/false (or 0/1), not %v (%T)", v, v)
}
