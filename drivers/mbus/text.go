package mbus

// text holds the strings of one decoded frame (identifier, manufacturer,
// dates, text values, quantities with their VIFEs) while it is decoded:
// they are written to one buffer, which a Decoder reuses, and the decoded
// fields note where theirs are (a span). When the frame is done the buffer
// becomes one string and the fields get substrings of it: the text of a
// frame costs one allocation of its size rather than one a string.
type text struct{ b []byte }

// span is a string in a text: b[start:end]. The zero span is no string.
type span struct {
	start, end int
	ok         bool
}

// in returns the span's string from the text turned into a string.
func (s span) in(all string) string { return all[s.start:s.end] }

// mark is where the next string starts.
func (t *text) mark() int { return len(t.b) }

// from is what was written since start.
func (t *text) from(start int) span { return span{start: start, end: len(t.b), ok: true} }

func (t *text) writeByte(c byte) { t.b = append(t.b, c) }

func (t *text) writeString(s string) { t.b = append(t.b, s...) }

const hexDigits = "0123456789ABCDEF"

// hexByte writes x as two upper-case hex digits.
func (t *text) hexByte(x byte) {
	t.b = append(t.b, hexDigits[x>>4], hexDigits[x&0x0F])
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
	t.b = append(t.b, buf[i:]...)
}
