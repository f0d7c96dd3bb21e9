package core

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestFloat32(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want string // the float64 printed shortest
	}{
		{230.1, "230.1"},
		{0.1, "0.1"},
		{-49.95, "-49.95"},
		{1234567.8, "1.2345678e+06"},
		{16777217, "1.6777216e+07"}, // not a float32: the nearest one is 16777216
		{math.MaxFloat32, "3.4028235e+38"},
		{math.SmallestNonzeroFloat32, "1e-45"},
		{0, "0"},
		{float32(math.Copysign(0, -1)), "-0"},
		{float32(math.Inf(1)), "+Inf"},
	} {
		got := Float32(tc.in)
		if s := strconv.FormatFloat(got, 'g', -1, 64); s != tc.want {
			t.Errorf("Float32(%v) = %s, want %s", tc.in, s, tc.want)
		}
		if float32(got) != tc.in {
			t.Errorf("Float32(%v) = %v does not read back as the same float32", tc.in, got)
		}
	}
	if !math.IsNaN(Float32(float32(math.NaN()))) {
		t.Error("NaN did not stay NaN")
	}
	if n := testing.AllocsPerRun(100, func() { _ = Float32(230.1) }); n != 0 {
		t.Errorf("Float32 allocates %v times", n)
	}
}

// FuzzFloat32: every float32 reads back from Float32 as itself, and the
// float64 prints as the float32's shortest decimal.
func FuzzFloat32(f *testing.F) {
	for _, bits := range []uint32{0x4366199A, 0x3DCCCCCD, 0x7F7FFFFF, 0x00000001, 0x80000000, 0x7FC00000, 0xFF800000} {
		f.Add(bits)
	}
	f.Fuzz(func(t *testing.T, bits uint32) {
		in := math.Float32frombits(bits)
		got := Float32(in)
		if math.IsNaN(float64(in)) {
			if !math.IsNaN(got) {
				t.Fatalf("NaN became %v", got)
			}
			return
		}
		if float32(got) != in {
			t.Fatalf("%#08x: Float32 = %v, reads back as %v", bits, got, float32(got))
		}
		want := strconv.FormatFloat(float64(in), 'g', -1, 32)
		if s := strconv.FormatFloat(got, 'g', -1, 64); s != want && !math.IsInf(got, 0) {
			t.Fatalf("%#08x: Float32 = %s, want %s", bits, s, want)
		}
	})
}

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		v, m float64
		want string
	}{
		{3, 0.1, "0.3"},       // 3 × 0.1 is 0.30000000000000004
		{230.1, 0.1, "23.01"}, // 230.1 × 0.1 is 23.009999999999998
		{1.1, 10, "11"},       // 1.1 × 10 is 11.000000000000002
		{0.2301, 1000, "230.1"},
		{1e300, 1e22, "+Inf"},
		{-1e-300, 1e-22, "-1e-322"},
		{7, 0.1, "0.7"},
		{12345, 0.01, "123.45"},
		{1, 1e-22, "1e-22"},
		{2301, 10, "23010"},
		{3, 0.5, "1.5"},                // not a power of ten: multiplied
		{3, 0.3, "0.8999999999999999"}, // likewise, rounding and all
		{5, -0.1, "-0.5"},              // negative: multiplied
	} {
		if got := strconv.FormatFloat(Scale(tc.v, tc.m), 'g', -1, 64); got != tc.want {
			t.Errorf("Scale(%v, %v) = %s, want %s", tc.v, tc.m, got, tc.want)
		}
	}
	for _, m := range []float64{1e-22, 1e-3, 0.1, 1, 10, 1e22} {
		if e, ok := Pow10Exponent(m); !ok || Pow10(e) != m {
			t.Errorf("Pow10Exponent(%v) = %d, %v", m, e, ok)
		}
	}
	for _, m := range []float64{0, 0.2, 1e-23, 1e23, -0.1, 0.30000000000000004, math.NaN(), math.Inf(1)} {
		if e, ok := Pow10Exponent(m); ok {
			t.Errorf("Pow10Exponent(%v) = %d, want not a power of ten", m, e)
		}
	}
	// A whole number divided by an exact power of ten is the nearest
	// float64 to the decimal, which is what parsing the decimal gives.
	for v := int64(-2000); v <= 2000; v++ {
		for n := 1; n <= 6; n++ {
			got := Scale(float64(v), Pow10(-n))
			want, _ := strconv.ParseFloat(strconv.FormatInt(v, 10)+"e-"+strconv.Itoa(n), 64)
			if got != want {
				t.Fatalf("Scale(%d, 1e-%d) = %v, want %v", v, n, got, want)
			}
		}
	}
}

func TestPlaces(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want int
	}{
		{230, 0}, {230.1, 1}, {-0.05, 2}, {1e-7, 7}, {1.5e-300, 301}, {0.30000000000000004, 17},
		{1e300, 0}, {math.Inf(-1), 0}, {math.NaN(), 0}, {123456.789, 3},
	} {
		if got := Places(tc.f); got != tc.want {
			t.Errorf("Places(%v) = %d, want %d", tc.f, got, tc.want)
		}
	}
}

func TestPow10(t *testing.T) {
	for e := -22; e <= 22; e++ {
		want, _ := strconv.ParseFloat("1e"+strconv.Itoa(e), 64)
		if got := Pow10(e); got != want {
			t.Errorf("Pow10(%d) = %v, want %v", e, got, want)
		}
	}
}

// FuzzShift: a decimal shift is what parsing the shortest decimal of v
// with its exponent moved gives, exactly; its places are those of that
// decimal; and it stays within a few units in the last place of the binary
// product.
func FuzzShift(f *testing.F) {
	f.Add(230.1, int8(-1))
	f.Add(2301.0, int8(-3))
	f.Add(1.1, int8(1))
	f.Add(math.MaxFloat64, int8(5))
	f.Add(5e-324, int8(-3))
	f.Add(math.Copysign(0, -1), int8(2))
	f.Add(-123456789.12345678, int8(-7))
	f.Fuzz(func(t *testing.T, v float64, e int8) {
		n := int(e) % 23
		got, places := ShiftPlaces(v, n)
		if math.IsNaN(v) {
			if !math.IsNaN(got) {
				t.Fatalf("Shift(NaN) = %v", got)
			}
			return
		}
		if math.IsInf(v, 0) || v == 0 {
			if got != v {
				t.Fatalf("Shift(%v) = %v", v, got)
			}
			return
		}
		ref, err := strconv.ParseFloat(strconv.FormatFloat(v, 'e', -1, 64)+"e"+strconv.Itoa(n), 64)
		if s := strconv.FormatFloat(v, 'e', -1, 64); strings.Count(s, "e") == 1 {
			mant, exp, _ := strings.Cut(s, "e")
			x, _ := strconv.Atoi(exp)
			ref, err = strconv.ParseFloat(mant+"e"+strconv.Itoa(x+n), 64)
		}
		if err == nil && got != ref {
			t.Fatalf("Shift(%v, %d) = %v, the decimal is %v", v, n, got, ref)
		}
		// The places are the decimal's: at least the result's (a 17-digit
		// decimal may print shorter once shifted), never fewer.
		if err == nil && places < Places(got) && !math.IsInf(got, 0) {
			t.Fatalf("ShiftPlaces(%v, %d) = %v, %d places; Places says %d", v, n, got, places, Places(got))
		}
		want := v * Pow10(n)
		if math.IsInf(want, 0) || math.IsInf(got, 0) || math.Abs(want) < 1e-290 {
			return // at the edges of the range the product itself is off
		}
		if d := math.Abs(got - want); d > 4*ulp(want) {
			t.Fatalf("Shift(%v, %d) = %v, the product is %v", v, n, got, want)
		}
	})
	if n := testing.AllocsPerRun(100, func() { _, _ = ShiftPlaces(230.1, -1) }); n != 0 {
		f.Fatalf("ShiftPlaces allocates %v times", n)
	}
}

func ulp(x float64) float64 {
	x = math.Abs(x)
	return math.Nextafter(x, math.Inf(1)) - x
}
