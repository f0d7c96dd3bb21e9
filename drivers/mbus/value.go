package mbus

import (
	"encoding/binary"
	"math"

	"github.com/osgate/osgate/drivers/core"
)

// dataSize is the length of the data field for each DIF data coding (the
// low nibble of the DIF); -1 is variable length (LVAR byte first).
var dataSize = [16]int{
	0x0: 0, 0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x5: 4, 0x6: 6, 0x7: 8,
	0x8: 0, 0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xD: -1, 0xE: 6, 0xF: 0,
}

// decodeData decodes the data field of coding at f[off] into r.Value
// (and r.Invalid) and returns the offset after it.
func decodeData(f []byte, off, end int, coding byte, msbFirst bool, vi *valueInfo, r *Field, tx *text) (int, error) {
	size := dataSize[coding]
	if size < 0 {
		return decodeVariable(f, off, end, vi, r, tx)
	}
	if size > end-off {
		return 0, errAt(end, "record at byte %d needs %d data bytes, only %d left", r.Offset, size, end-off)
	}
	if size == 0 {
		return off, nil
	}
	var buf [8]byte
	b := buf[:size]
	copy(b, f[off:off+size])
	if msbFirst {
		for i, j := 0, size-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
	}
	off += size
	switch coding {
	case 0x1, 0x2, 0x3, 0x4, 0x6, 0x7:
		if vi.kind != kindNumber && decodeDate(b, r, tx) {
			return off, nil
		}
		r.Value = number(vi.scale(float64(signedInt(b))))
	case 0x5:
		r.Value = number(vi.scale(core.Float32(math.Float32frombits(binary.LittleEndian.Uint32(b)))))
	default: // BCD, 0x9–0xC and 0xE
		bcdValue(b, false, vi, r, tx)
	}
	return off, nil
}

// decodeVariable decodes a variable-length data field (DIF coding 0xD): an
// LVAR byte saying what follows, then the data.
func decodeVariable(f []byte, off, end int, vi *valueInfo, r *Field, tx *text) (int, error) {
	rec := r.Offset
	if off >= end {
		return 0, errAt(off, "record at byte %d ends before its LVAR byte", rec)
	}
	lvar := f[off]
	off++
	var n int
	switch {
	case lvar <= 0xBF:
		n = int(lvar)
	case lvar >= 0xC0 && lvar <= 0xC9, lvar >= 0xD0 && lvar <= 0xD9:
		n = int(lvar & 0x0F)
	case lvar >= 0xE0 && lvar <= 0xEF:
		n = int(lvar - 0xE0)
	case lvar >= 0xF0 && lvar <= 0xF4:
		n = 4 * int(lvar-0xEC)
	case lvar == 0xF5:
		n = 6
	case lvar == 0xF6:
		n = 8
	default:
		return 0, errAt(off-1, "record at byte %d has reserved LVAR 0x%02X", rec, lvar)
	}
	if n > end-off {
		return 0, errAt(end, "record at byte %d: LVAR 0x%02X needs %d data bytes, only %d left", rec, lvar, n, end-off)
	}
	b := f[off : off+n]
	off += n
	switch {
	case lvar <= 0xBF:
		r.setText(tx.reversed(b))
	case lvar <= 0xD9:
		bcdValue(b, lvar >= 0xD0, vi, r, tx)
	case n <= 8:
		r.Value = number(vi.scale(float64(signedInt(b))))
	default:
		r.setText(tx.hexReversed(b))
	}
	return off, nil
}

// signedInt decodes a little-endian two's complement integer of 1–8 bytes.
func signedInt(b []byte) int64 {
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	shift := 64 - 8*uint(len(b))
	return int64(u<<shift) >> shift
}

// bcdValue decodes packed BCD, least significant byte first. An F in the
// most significant digit is a minus sign. A field with other non-decimal
// digits is not a number: its value is its digits ("12E4"). The value
// goes to r.
func bcdValue(b []byte, neg bool, vi *valueInfo, r *Field, tx *text) {
	var v float64
	for i := len(b) - 1; i >= 0; i-- {
		hi, lo := b[i]>>4, b[i]&0x0F
		if i == len(b)-1 && hi == 0x0F {
			neg, hi = true, 0
		}
		if hi > 9 || lo > 9 {
			r.setText(tx.bcdDigits(b))
			return
		}
		v = v*100 + float64(hi*10+lo)
	}
	if neg {
		v = -v
	}
	r.Value = number(vi.scale(v))
}

func (t *text) bcdDigits(b []byte) span {
	start := t.mark()
	for i := len(b) - 1; i >= 0; i-- {
		t.hexByte(b[i])
	}
	return t.from(start)
}

// decodeDate decodes the date and time types of EN 13757-3 Annex A by the
// size of the data field into r: G (2 bytes, date), J (3, time of day), F
// (4, date and time to the minute), I (6, to the second). It says whether
// the size is one of those.
func decodeDate(b []byte, r *Field, tx *text) bool {
	start := tx.mark()
	switch len(b) {
	case 2:
		tx.date(dateFields(b[0], b[1], 0))
	case 3:
		tx.clock(int(b[2]&0x1F), int(b[1]&0x3F), int(b[0]&0x3F))
	case 4:
		tx.date(dateFields(b[2], b[3], b[1]>>5&3))
		tx.writeByte('T')
		tx.clock(int(b[1]&0x1F), int(b[0]&0x3F), 0)
		tx.writeByte('Z')
		r.Invalid = b[0]&0x80 != 0
	case 6:
		tx.date(dateFields(b[3], b[4], 0))
		tx.writeByte('T')
		tx.clock(int(b[2]&0x1F), int(b[1]&0x3F), int(b[0]&0x3F))
		tx.writeByte('Z')
		r.Invalid = b[1]&0x80 != 0
	default:
		return false
	}
	r.setText(tx.from(start))
	return true
}

// date writes year-month-day, "2013-05-31".
func (t *text) date(year, month, day int) {
	t.digits(year, 4)
	t.writeByte('-')
	t.digits(month, 2)
	t.writeByte('-')
	t.digits(day, 2)
}

// clock writes hours:minutes:seconds, "15:25:00".
func (t *text) clock(h, m, s int) {
	t.digits(h, 2)
	t.writeByte(':')
	t.digits(m, 2)
	t.writeByte(':')
	t.digits(s, 2)
}

// dateFields takes day and year bits from dy, month and year bits from my,
// and the hundred-year field of type F. Years 0–80 without a hundred-year
// field are read as 2000–2080, 81–99 as 1981–1999.
func dateFields(dy, my, hundreds byte) (year, month, day int) {
	y := int(dy>>5) | int(my>>4)<<3
	switch {
	case hundreds != 0:
		year = 1900 + 100*int(hundreds) + y
	case y <= 80:
		year = 2000 + y
	default:
		year = 1900 + y
	}
	return year, int(my & 0x0F), int(dy & 0x1F)
}

// hexBytes renders bytes in the order sent, "0A 1B 2C".
func hexBytes(b []byte) string {
	var t text
	return t.hexBytes(b).in(string(t.b))
}

// hexBytes renders bytes in the order sent, "0A 1B 2C", into t.
func (t *text) hexBytes(b []byte) span {
	start := t.mark()
	for i, x := range b {
		if i > 0 {
			t.writeByte(' ')
		}
		t.hexByte(x)
	}
	return t.from(start)
}

// hexReversed renders a long binary number most significant byte first,
// "2C 1B 0A".
func (t *text) hexReversed(b []byte) span {
	start := t.mark()
	for i := len(b) - 1; i >= 0; i-- {
		if i < len(b)-1 {
			t.writeByte(' ')
		}
		t.hexByte(b[i])
	}
	return t.from(start)
}
