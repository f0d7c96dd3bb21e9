package mqttwire

import (
	"bytes"
	"errors"
	"testing"
)

// The examples of the MQTT specification (3.1.1, 2.2.3): the boundaries
// of one to four bytes.
func TestLength(t *testing.T) {
	for _, c := range []struct {
		n    int
		wire []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{2097151, []byte{0xff, 0xff, 0x7f}},
		{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
		{MaxLength, []byte{0xff, 0xff, 0xff, 0x7f}},
	} {
		if got := AppendLength([]byte{0x30}, c.n); !bytes.Equal(got[1:], c.wire) || got[0] != 0x30 {
			t.Errorf("AppendLength(%d) = % x, want 30 % x", c.n, got, c.wire)
		}
		n, used, done, err := Length(append(c.wire, 0xaa, 0xbb))
		if n != c.n || used != len(c.wire) || !done || err != nil {
			t.Errorf("Length(% x) = %d, %d, %v, %v", c.wire, n, used, done, err)
		}
		// Cut short: not done, no error.
		if _, _, done, err := Length(c.wire[:len(c.wire)-1]); done || err != nil {
			t.Errorf("Length(% x) cut short: done %v, err %v", c.wire, done, err)
		}
	}
	if _, _, done, err := Length([]byte{0xff, 0xff, 0xff, 0xff, 0x01}); done || !errors.Is(err, ErrLengthTooLong) {
		t.Errorf("five bytes: done %v, err %v", done, err)
	}
}

func FuzzLength(f *testing.F) {
	f.Add([]byte{0x00})
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, used, done, err := Length(b)
		if !done {
			return
		}
		if err != nil || used < 1 || used > MaxLengthBytes || n < 0 || n > MaxLength {
			t.Fatalf("Length(% x) = %d, %d, %v, %v", b, n, used, done, err)
		}
		// What decodes encodes back the same, unless it was padded
		// (0x80 0x00 is 0 in two bytes: allowed on the wire, not made).
		if enc := AppendLength(nil, n); len(enc) == used && !bytes.Equal(enc, b[:used]) {
			t.Fatalf("% x decodes to %d, which encodes as % x", b[:used], n, enc)
		}
	})
}
