package mbus

import "github.com/osgate/osgate/drivers/core"

// What a value information block (VIF and VIFEs) says about a record's
// value: its quantity, SI unit, the factor that turns the raw number into
// that unit, and whether the data is a number, a date or a time.
type valueInfo struct {
	quantity string
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

// secondsPer turns the two-bit time unit nn of durations (s, min, h, d)
// into seconds.
var secondsPer = [4]float64{1, 60, 3600, 86400}

func num(quantity, unit string, exp int) valueInfo {
	return valueInfo{quantity: quantity, unit: unit, mult: pow10(exp)}
}

func duration(quantity string, nn byte) valueInfo {
	return valueInfo{quantity: quantity, unit: "s", mult: secondsPer[nn&3]}
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
