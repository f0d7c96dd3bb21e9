package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/osgate/osgate/drivers/core"
)

// errShort is a response that holds fewer bytes than a channel needs.
var errShort = errors.New("response too short")

// decodeRegisters turns a channel's registers, as they came off the wire
// (2 bytes per register, high byte first), into a Reading value: int64,
// float64, bool or string. A float32 becomes the decimal it stands for
// (core.Float32).
func decodeRegisters(ch *channel, wire []byte) (any, error) {
	if len(wire) < 2*ch.width {
		return nil, fmt.Errorf("decode %s %s: %w: %d bytes, need %d", ch.typ, ch.order, errShort, len(wire), 2*ch.width)
	}
	wire = wire[:2*ch.width]
	if ch.typ == typeString {
		return decodeString(wire, ch.order, ch.length), nil
	}
	var buf [8]byte
	b := reorder(buf[:len(wire)], wire, ch.order)
	switch ch.typ {
	case typeBit:
		return binary.BigEndian.Uint16(b)>>ch.bit&1 == 1, nil
	case typeInt16:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case typeUint16:
		return int64(binary.BigEndian.Uint16(b)), nil
	case typeInt32:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case typeUint32:
		return int64(binary.BigEndian.Uint32(b)), nil
	case typeInt64:
		return int64(binary.BigEndian.Uint64(b)), nil
	case typeUint64:
		u := binary.BigEndian.Uint64(b)
		if u > math.MaxInt64 {
			// Reading values are int64 or float64: beyond int64, precision goes.
			return float64(u), nil
		}
		return int64(u), nil
	case typeFloat32:
		return core.Float32(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case typeFloat64:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return nil, fmt.Errorf("decode: type %s is not a register type", ch.typ)
}

// decode is decodeRegisters keeping the channel's last value: registers
// whose bytes are the same as at the last poll give the same value back
// rather than a new one (a number in a Reading's Value is an allocation),
// so a device whose values mostly stand still makes no garbage per reading.
// Strings are decoded each time.
func (ch *channel) decode(wire []byte) (any, error) {
	n := 2 * ch.width
	if ch.typ == typeString || n > len(ch.lastWire) || len(wire) < n {
		return decodeRegisters(ch, wire)
	}
	wire = wire[:n]
	if ch.last != nil && string(wire) == string(ch.lastWire[:n]) {
		return ch.last, nil
	}
	v, err := decodeRegisters(ch, wire)
	if err == nil {
		copy(ch.lastWire[:], wire)
		ch.last = v
	}
	return v, err
}

// decodeBit returns bit i of a coil/discrete-input response (LSB first).
func decodeBit(wire []byte, i int) (bool, error) {
	if i < 0 || i/8 >= len(wire) {
		return false, fmt.Errorf("decode bool: %w: bit %d of %d bytes", errShort, i, len(wire))
	}
	return wire[i/8]>>(i%8)&1 == 1, nil
}

// reorder writes src into dst in big-endian order, undoing o.
func reorder(dst, src []byte, o order) []byte {
	n := len(src) / 2
	for w := 0; w < n; w++ {
		from := w
		if o&swapWords != 0 {
			from = n - 1 - w
		}
		hi, lo := src[2*from], src[2*from+1]
		if o&swapBytes != 0 {
			hi, lo = lo, hi
		}
		dst[2*w], dst[2*w+1] = hi, lo
	}
	return dst[:2*n]
}

// decodeString reads ASCII text two characters per register. Word order
// CDAB/DCBA is ignored for strings (there is no "high word" of a string);
// BADC/DCBA swap the two characters of each register, as some meters send
// them. Trailing NULs and spaces are dropped; other control bytes stay so
// that a misconfigured channel is visible.
func decodeString(wire []byte, o order, length int) string {
	b := make([]byte, len(wire))
	copy(b, wire)
	if o&swapBytes != 0 {
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	if length < len(b) {
		b = b[:length]
	}
	return strings.TrimRight(string(b), "\x00 ")
}
