// Package mqttwire holds the pieces of the MQTT wire format that osgate
// reads and writes itself, beside paho: the remaining length of a fixed
// header. The export writes its PUBLISH packets and reads the broker's
// acknowledgements with it (internal/mqttconn); the MQTT connector reads
// the fixed headers of what a field broker sends to bound its packets
// (drivers/mqtt).
package mqttwire

import "errors"

// MaxLengthBytes is how many bytes a remaining length takes at most.
const MaxLengthBytes = 4

// MaxLength is the largest remaining length the format can say
// (256 MB - 1).
const MaxLength = 1<<28 - 1

// ErrLengthTooLong: a remaining length ran past four bytes.
var ErrLengthTooLong = errors.New("mqtt: malformed packet: remaining length over 4 bytes")

// AppendLength appends n (0 <= n <= MaxLength) as a remaining length: seven
// bits a byte, the low ones first, the top bit set on every byte but the
// last.
func AppendLength(dst []byte, n int) []byte {
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}

// Length decodes the remaining length at the start of b: its value and
// how many bytes it took. done is false while b holds no last byte yet
// (more is to come); err is set when four bytes did not end it.
func Length(b []byte) (n, used int, done bool, err error) {
	for i, c := range b {
		if i == MaxLengthBytes {
			break
		}
		n |= int(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return n, i + 1, true, nil
		}
	}
	if len(b) >= MaxLengthBytes {
		return 0, 0, false, ErrLengthTooLong
	}
	return 0, 0, false, nil
}
