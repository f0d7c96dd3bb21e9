package modbus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDecodeTable runs the cases in testdata/decode.txt.
func TestDecodeTable(t *testing.T) {
	b, err := os.ReadFile("testdata/decode.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		n++
		f := strings.Fields(line)
		if len(f) < 4 {
			t.Fatalf("decode.txt:%d: want TYPE ORDER HEX [length=N|bit=N] WANT", i+1)
		}
		ch := channel{order: orderNames[f[1]], width: 1}
		for typ, name := range typeNames {
			if name == f[0] {
				ch.typ = dataType(typ)
			}
		}
		ch.width = ch.typ.registers()
		wire, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatalf("decode.txt:%d: %v", i+1, err)
		}
		rest := strings.TrimSpace(strings.SplitN(line, f[2], 2)[1])
		if k, v, ok := strings.Cut(strings.Fields(rest)[0], "="); ok {
			x, _ := strconv.Atoi(v)
			if k == "length" {
				ch.length, ch.width = x, (x+1)/2
			} else {
				ch.bit = uint8(x)
			}
			rest = strings.TrimSpace(strings.TrimPrefix(rest, k+"="+v))
		}
		got, err := decodeRegisters(&ch, wire)
		if msg, isErr := strings.CutPrefix(rest, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Errorf("decode.txt:%d: %s %s % x: %v, %v; want an error with %q", i+1, ch.typ, ch.order, wire, got, err, msg)
			}
			continue
		}
		want := parseWant(rest)
		if err != nil || got != want {
			t.Errorf("decode.txt:%d: %s %s % x: got %v (%T) %v, want %v (%T)", i+1, ch.typ, ch.order, wire, got, got, err, want, want)
		}
	}
	if n < 30 {
		t.Fatalf("only %d cases in testdata/decode.txt", n)
	}
	if _, err := decodeBit([]byte{1}, 8); !errors.Is(err, errShort) {
		t.Errorf("bit past the response: %v", err)
	}
	if v, err := decodeBit([]byte{0, 0x80}, 15); !v || err != nil {
		t.Errorf("bit 15 of 00 80: %v %v", v, err)
	}
}

func parseWant(s string) any {
	switch {
	case s == "true" || s == "false":
		return s == "true"
	case strings.HasPrefix(s, `"`):
		u, _ := strconv.Unquote(s)
		return u
	case strings.ContainsAny(s, ".e"):
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	i, _ := strconv.ParseInt(s, 10, 64)
	return i
}

// FuzzDecode feeds arbitrary response bytes to every type and order: no
// panic, a clear error when the response is too short, and for numbers the
// value encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for typ := range len(typeNames) {
		for ord := range 4 {
			f.Add([]byte{0x3F, 0xC0, 0, 0, 1, 2, 3, 4}, uint8(typ), uint8(ord), uint8(7), uint8(3))
			f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, uint8(typ), uint8(ord), uint8(8), uint8(15))
			f.Add([]byte{0x7F, 0xC0}, uint8(typ), uint8(ord), uint8(1), uint8(0))
		}
	}
	f.Add([]byte{}, uint8(0), uint8(0), uint8(0), uint8(0))
	f.Add([]byte("AB-7\x00 "), uint8(typeString), uint8(orderBADC), uint8(250), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, typ, ord, length, bit uint8) {
		ch := channel{typ: dataType(typ % uint8(len(typeNames))), order: order(ord % 4), bit: bit % 16}
		ch.width = ch.typ.registers()
		if ch.typ == typeString {
			ch.length = int(length)%250 + 1
			ch.width = (ch.length + 1) / 2
		}
		if ch.typ == typeBool {
			v, err := decodeBit(data, int(length))
			if (err == nil) != (int(length)/8 < len(data)) {
				t.Fatalf("decodeBit(%d bytes, %d) = %v, %v", len(data), length, v, err)
			}
			return
		}
		v, err := decodeRegisters(&ch, data)
		if len(data) < 2*ch.width {
			if !errors.Is(err, errShort) {
				t.Fatalf("%s %s on %d bytes: %v, want errShort", ch.typ, ch.order, len(data), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s %s: %v", ch.typ, ch.order, err)
		}
		switch x := v.(type) {
		case string:
			if len(x) > ch.length {
				t.Fatalf("string of %d bytes from a %d-byte channel", len(x), ch.length)
			}
			return
		case bool:
			if ch.typ != typeBit {
				t.Fatalf("%s decoded to bool", ch.typ)
			}
			return
		case float64:
			if math.IsNaN(x) || ch.typ == typeUint64 {
				return // NaN payloads and uint64 above int64 do not round-trip exactly
			}
		}
		back, err := encodeRegisters(&ch, v)
		if err != nil {
			t.Fatalf("%s %s: encode %v: %v", ch.typ, ch.order, v, err)
		}
		if !bytes.Equal(back, data[:2*ch.width]) {
			t.Fatalf("%s %s: % x decodes to %v, which encodes to % x", ch.typ, ch.order, data[:2*ch.width], v, back)
		}
	})
}

func TestEncodeRejects(t *testing.T) {
	for _, tc := range []struct {
		typ dataType
		v   any
	}{
		{typeInt16, int64(40000)}, {typeUint16, int64(-1)}, {typeUint32, 5e9}, {typeInt64, 1e19},
		{typeUint64, int64(-1)}, {typeUint64, -0.6}, {typeInt32, math.NaN()}, {typeFloat32, 1e39}, {typeUint16, true},
		{typeFloat64, "1"}, {typeBit, int64(1)},
	} {
		ch := channel{typ: tc.typ, width: tc.typ.registers()}
		if b, err := encodeRegisters(&ch, tc.v); err == nil {
			t.Errorf("%s accepted %v as % x", tc.typ, tc.v, b)
		}
	}
	ch := channel{typ: typeInt16, width: 1}
	if b, err := encodeRegisters(&ch, 12.000000001); err != nil || !bytes.Equal(b, []byte{0, 12}) {
		t.Errorf("a scaled value rounds to the register: % x %v", b, err)
	}
}

// A channel's decode hands back its last value while its registers stay
// the same, without a new allocation, and decodes anew when they change.
func TestDecodeKeepsLastValue(t *testing.T) {
	for _, c := range []struct {
		typ        dataType
		a, b       []byte
		wantA, wnB any
	}{
		{typeUint16, []byte{0x12, 0x34}, []byte{0x12, 0x35}, int64(0x1234), int64(0x1235)},
		{typeInt32, []byte{0xff, 0xff, 0xff, 0xfe}, []byte{0, 0, 1, 0}, int64(-2), int64(256)},
		{typeFloat64, []byte{0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}, []byte{0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x19}, math.Pi, math.Nextafter(math.Pi, 4)},
	} {
		ch := &channel{typ: c.typ, width: c.typ.registers()}
		for round, step := range []struct {
			wire []byte
			want any
		}{{c.a, c.wantA}, {c.a, c.wantA}, {c.b, c.wnB}, {c.b, c.wnB}, {c.a, c.wantA}} {
			got, err := ch.decode(append([]byte(nil), step.wire...))
			if err != nil || got != step.want {
				t.Errorf("%s round %d: decode % x = %v (%T), %v; want %v", c.typ, round, step.wire, got, got, err, step.want)
			}
		}
		wire := append([]byte(nil), c.a...)
		ch.decode(wire)
		if n := testing.AllocsPerRun(100, func() { ch.decode(wire) }); n != 0 {
			t.Errorf("%s: decode of unchanged registers allocates %.0f times, want 0", c.typ, n)
		}
	}
	// Strings are decoded every time, and a short response is still an error.
	s := &channel{typ: typeString, width: 2, length: 4}
	for _, w := range []string{"ABCD", "ABCE"} {
		if got, err := s.decode([]byte(w)); err != nil || got != w {
			t.Errorf("string decode %q = %v, %v", w, got, err)
		}
	}
	u := &channel{typ: typeUint32, width: 2}
	u.decode([]byte{0, 0, 0, 1})
	if _, err := u.decode([]byte{0, 0}); !errors.Is(err, errShort) {
		t.Errorf("short response after a good one: %v, want errShort", err)
	}
}
