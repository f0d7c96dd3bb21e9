package mbus

import (
	"math"

	"github.com/osgate/osgate/drivers/core"
)

// What a value information block (VIF and VIFEs) says about a record's
// value: its quantity, SI unit, the factor that turns the raw number into
// that unit, and whether the data is a number, a date or a time.
type valueInfo struct {
	quantity string
	qtext    span // the quantity, when it is in the frame's text
	// powKnown says that pow and exp tell whether mult is 10^exp (as
	// core.Pow10Exponent finds), worked out once for the VIF tables.
	powKnown bool
	pow      bool
	exp      int
	unit     string
	mult     float64
	kind     valueKind
}

type valueKind uint8

const (
	kindNumber   valueKind = iota
	kindDate               // type G (16 bit) date; F/I when the data is longer
	kindDateTime           // type F (32 bit), I (48 bit) or J (24 bit, time)
)

// pow10 is 10^e for the exponents the VIF tables use: the float64
// nearest to it, so that a value scaled by a negative power is divided
// (core.Scale) and comes out as the decimal the meter sent.
func pow10(e int) float64 { return core.Pow10(e) }

// log10of2 bounds the decimal exponent of a float64 by its binary one.
const log10of2 = 0.30102999566398119521

// scale is core.Scale(v, m): v × m as a decimal shift when m is a power of
// ten (pow10), else the product. It finds the power from m's binary
// exponent instead of a logarithm: m = f × 2^b with f in [0.5, 1) puts
// log10(m) in [(b-1)·log10(2), b·log10(2)), an interval narrower than 1,
// so only its floor and the next integer can be the power.
func scale(v, m float64) float64 {
	if m == 1 {
		return v // Shift by 0 is v itself
	}
	_, b := math.Frexp(m)
	e := int(math.Floor(float64(b-1) * log10of2))
	for _, c := range [2]int{e, e + 1} {
		if c >= -22 && c <= 22 && core.Pow10(c) == m {
			return core.Shift(v, c)
		}
	}
	return v * m
}

// secondsPer turns the two-bit time unit nn of durations (s, min, h, d)
// into seconds.
var secondsPer = [4]float64{1, 60, 3600, 86400}

func num(quantity, unit string, exp int) valueInfo {
	return valueInfo{quantity: quantity, unit: unit, mult: pow10(exp)}
}

func duration(quantity string, nn byte) valueInfo {
	return valueInfo{quantity: quantity, unit: "s", mult: secondsPer[nn&3]}
}

// The VIF tables, computed once from the functions that define them.
var (
	primaryVIFs = vifTable(primaryVIF)
	fbVIFs      = vifTable(fbVIF)
	fdVIFs      = vifTable(fdVIF)
)

func vifTable(decode func(byte) valueInfo) (t [128]valueInfo) {
	for v := range t {
		t[v] = decode(byte(v))
		t[v].exp, t[v].pow = core.Pow10Exponent(t[v].mult)
		t[v].powKnown = true
	}
	return t
}

// scale is core.Scale(v, vi.mult).
func (vi *valueInfo) scale(v float64) float64 {
	switch {
	case !vi.powKnown:
		return scale(v, vi.mult)
	case vi.pow:
		return core.Shift(v, vi.exp)
	}
	return v * vi.mult
}

// primaryVIF decodes a VIF of the primary table, EN 13757-3 "primary VIF
// codes", extension bit removed. Units are normalised to SI: energy in Wh
// or J, volume in m^3, mass in kg, time in s, pressure in bar (as meters
// report it).
func primaryVIF(v byte) valueInfo {
	n := int(v & 7)
	nn := v & 3
	switch {
	case v <= 0x07:
		return num("Energy", "Wh", n-3)
	case v <= 0x0F:
		return num("Energy", "J", n)
	case v <= 0x17:
		return num("Volume", "m^3", n-6)
	case v <= 0x1F:
		return num("Mass", "kg", n-3)
	case v <= 0x23:
		return duration("On time", nn)
	case v <= 0x27:
		return duration("Operating time", nn)
	case v <= 0x2F:
		return num("Power", "W", n-3)
	case v <= 0x37:
		return num("Power", "J/h", n)
	case v <= 0x3F:
		return num("Volume flow", "m^3/h", n-6)
	case v <= 0x47:
		return num("Volume flow ext.", "m^3/min", n-7)
	case v <= 0x4F:
		return num("Volume flow ext.", "m^3/s", n-9)
	case v <= 0x57:
		return num("Mass flow", "kg/h", n-3)
	case v <= 0x5B:
		return num("Flow temperature", "°C", int(nn)-3)
	case v <= 0x5F:
		return num("Return temperature", "°C", int(nn)-3)
	case v <= 0x63:
		return num("Temperature difference", "K", int(nn)-3)
	case v <= 0x67:
		return num("External temperature", "°C", int(nn)-3)
	case v <= 0x6B:
		return num("Pressure", "bar", int(nn)-3)
	case v == 0x6C:
		return valueInfo{quantity: "Time point (date)", unit: "-", mult: 1, kind: kindDate}
	case v == 0x6D:
		return valueInfo{quantity: "Time point (date & time)", unit: "-", mult: 1, kind: kindDateTime}
	case v == 0x6E:
		return valueInfo{quantity: "H.C.A.", unit: "Units for H.C.A.", mult: 1}
	case v == 0x6F:
		return num("Reserved", "", 0)
	case v <= 0x73:
		return duration("Averaging Duration", nn)
	case v <= 0x77:
		return duration("Actuality Duration", nn)
	case v == 0x78:
		return num("Fabrication No", "", 0)
	case v == 0x79:
		return num("(Enhanced) Identification", "", 0)
	case v == 0x7A:
		return num("Bus Address", "", 0)
	case v == 0x7E:
		return num("Any VIF", "", 0)
	case v == 0x7F:
		return num("Manufacturer specific", "", 0)
	}
	// 0x7B and 0x7D are only meaningful with the extension bit (0xFB, 0xFD),
	// 0x7C is the plain-text VIF; both are handled by the caller.
	return num("Reserved", "", 0)
}
