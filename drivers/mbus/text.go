package mbus

import "strings"

// text holds the strings of one decoded frame (identifier, manufacturer,
// dates, text values, quantities with their VIFEs) in one buffer: each
// string is a slice of the buffer, which later writes leave alone (a
// strings.Builder never changes what it has handed out), so the text of a
// frame costs one allocation rather than one a string.
type text struct{ b strings.Builder }

// newText sizes the buffer for the text of a frame of n bytes.
func newText(n int) *text {
	t := &text{}
	t.reset(n)
	return t
}

// reset starts a new buffer for the text of a frame of n bytes (the
// strings handed out from the old one stay as they are). A few characters
// a byte covers dates, hex and quantities with suffixes; more only costs
// another allocation.
func (t *text) reset(n int) {
	t.b = strings.Builder{}
	t.b.Grow(64 + 4*n)
}

// mark is where the next string starts.
func (t *text) mark() int { return t.b.Len() }

// from is what was written since start.
func (t *text) from(start int) string { return t.b.String()[start:] }

const hexDigits = "0123456789ABCDEF"

// hexByte writes x as two upper-case hex digits.
func (t *text) hexByte(x byte) {
	t.b.WriteByte(hexDigits[x>>4])
	t.b.WriteByte(hexDigits[x&0x0F])
}

// digits writes v in decimal with at least width digits (v ≥ 0).
func (t *text) digits(v, width int) {
	var buf [20]byte
	i := len(buf)
	for v > 0 || width > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	t.b.Write(buf[i:])
}
