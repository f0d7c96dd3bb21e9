package core

import (
	"math"
	"strconv"
)

// Float32 returns the value a device meant by a float32 it sent: the
// float64 nearest to the shortest decimal that reads back as the same
// float32. A meter's 230.1 V arrives as the float32 230.10000610351562
// (its nearest float32); Float32 makes it 230.1, so that it is exported,
// compared with a channel's min and max, scaled and written back as 230.1.
// Nothing of the device's value is lost: float32(Float32(f)) == f for
// every f, and NaN and ±Inf stay what they are.
//
// Drivers call it for every float32 they decode (Modbus float32
// registers, M-Bus type H reals); Reading values stay float64.
func Float32(f float32) float64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return float64(f)
	}
	var buf [24]byte
	b := strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)
	d, err := strconv.ParseFloat(string(b), 64)
	if err != nil || float32(d) != f {
		// Cannot happen for a finite float32; keep the exact value if it did.
		return float64(f)
	}
	return d
}

// pow10 holds 10⁰ to 10²², every one exact in a float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// pow10neg holds the float64s nearest to 10⁻¹ to 10⁻²² (index n is 10⁻ⁿ).
var pow10neg = [...]float64{1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10,
	1e-11, 1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22}

// Pow10Exponent returns e when m is 10ᵉ (the float64 nearest to it) for
// e from -22 to 22, and ok false for any other m.
func Pow10Exponent(m float64) (e int, ok bool) {
	if !(m > 0) || math.IsInf(m, 0) {
		return 0, false
	}
	e = int(math.Round(math.Log10(m)))
	if e < -22 || e > 22 || Pow10(e) != m {
		return 0, false
	}
	return e, true
}

// Shift returns v × 10ᵉ as a decimal shift: the float64 nearest to the
// decimal v stands for (its shortest representation) with the point moved
// by e places. 2301 shifted by -1 is 230.1 and 230.1 shifted by -1 is
// 23.01, where the binary products 2301 × 0.1 and 230.1 × 0.1 may come out
// as 230.10000000000002 or 23.009999999999998, because 0.1 is not a tenth
// in binary.
func Shift(v float64, e int) float64 {
	r, _ := ShiftPlaces(v, e)
	return r
}

// ShiftPlaces is Shift, and the decimal places of the shifted decimal
// (Places of the result, without formatting it again).
func ShiftPlaces(v float64, e int) (float64, int) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v == 0:
		return v, 0
	case v == math.Trunc(v) && math.Abs(v) < 1<<53 && e >= -22 && e <= 22:
		// A whole number is exact, and so are 10⁰ to 10²²: one correctly
		// rounded operation gives the decimal.
		if e < 0 {
			return v / pow10[-e], -e
		}
		return v * pow10[e], 0
	}
	neg, mant, x := decimal(v)
	places := max(0, -(x + e))
	if e == 0 {
		return v, places
	}
	if x += e; mant < 1<<53 && x >= -22 && x <= 22 {
		// mant × 10ˣ with mant and 10ˣ exact: one correctly rounded
		// operation, as strconv.ParseFloat would give.
		r := float64(mant)
		if x < 0 {
			r /= pow10[-x]
		} else {
			r *= pow10[x]
		}
		if neg {
			r = -r
		}
		return r, places
	}
	var buf [40]byte
	b := append(buf[:0], '-')
	if !neg {
		b = b[:0]
	}
	b = strconv.AppendUint(b, mant, 10)
	b = append(b, 'e')
	b = strconv.AppendInt(b, int64(x), 10)
	d, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return v * math.Pow10(e), places // out of range: ±Inf or 0, as the product
	}
	return d, places
}

// decimal splits the shortest decimal representation of a finite,
// non-zero v into its sign, its digits as a number (at most 17, so they
// fit) and the exponent of the last digit: 230.1 is 2301 × 10⁻¹.
func decimal(v float64) (neg bool, mant uint64, exp int) {
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], v, 'e', -1, 64) // [-]d[.ddd]e±XX
	i := 0
	if b[0] == '-' {
		neg, i = true, 1
	}
	n := 0
	for ; b[i] != 'e'; i++ {
		if c := b[i]; c >= '0' && c <= '9' {
			mant = mant*10 + uint64(c-'0')
			n++
		}
	}
	i++ // 'e'
	sign := 1
	switch b[i] {
	case '-':
		sign = -1
		i++
	case '+':
		i++
	}
	e := 0
	for ; i < len(b); i++ {
		e = e*10 + int(b[i]-'0')
	}
	return neg, mant, sign*e - (n - 1)
}

// Scale returns v × m, as a decimal shift (Shift) when m is a power of ten
// from 10⁻²² to 10²², so that scaling by 0.1, 0.01 or 1000 moves the
// decimal point instead of adding binary noise. Any other factor is a
// plain float64 product.
func Scale(v, m float64) float64 {
	if e, ok := Pow10Exponent(m); ok {
		return Shift(v, e)
	}
	return v * m
}

// Pow10 returns 10ᵉ as the float64 nearest to it, for e from -22 to 22
// (math.Pow10 outside that range).
func Pow10(e int) float64 {
	switch {
	case e >= 0 && e < len(pow10):
		return pow10[e]
	case e < 0 && -e < len(pow10neg):
		return pow10neg[-e]
	}
	return math.Pow10(e)
}

// MaxPlaces is the most decimal places a decimal computation here keeps
// (Shift-based rounding, decimal sums): a float64 holds 15 significant
// digits for sure.
const MaxPlaces = 15

// Places returns how many decimal places the shortest representation of
// f has: 0 for 230, 1 for 230.1, 17 for 0.30000000000000004, and 0 for
// NaN and ±Inf.
func Places(f float64) int {
	if f == math.Trunc(f) || math.IsNaN(f) {
		return 0
	}
	_, _, exp := decimal(f)
	return max(0, -exp)
}
