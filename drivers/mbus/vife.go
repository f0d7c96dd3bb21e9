package mbus

// recordErrors are the VIFE codes 0x00–0x1F a meter sends to say a record's
// value is not valid, EN 13757-3 "codes for record errors".
var recordErrors = [0x20]string{
	0x00: "no error",
	0x01: "too many DIFEs",
	0x02: "storage number not implemented",
	0x03: "unit number not implemented",
	0x04: "tariff number not implemented",
	0x05: "function not implemented",
	0x06: "data class not implemented",
	0x07: "data size not implemented",
	0x0B: "too many VIFEs",
	0x0C: "illegal VIF-group",
	0x0D: "illegal VIF-exponent",
	0x0E: "VIF/DIF mismatch",
	0x0F: "unimplemented action",
	0x15: "no data available (undefined value)",
	0x16: "data overflow",
	0x17: "data underflow",
	0x18: "data error",
	0x1C: "premature end of record",
}

// combinableNames are the orthogonal VIFEs, EN 13757-3 "combinable
// (orthogonal) VIFE code extension table", that only qualify the quantity.
var combinableNames = [0x80]string{
	0x20: "per second",
	0x21: "per minute",
	0x22: "per hour",
	0x23: "per day",
	0x24: "per week",
	0x25: "per month",
	0x26: "per year",
	0x27: "per revolution / measurement",
	0x28: "increment per input pulse on input channel #0",
	0x29: "increment per input pulse on input channel #1",
	0x2A: "increment per output pulse on output channel #0",
	0x2B: "increment per output pulse on output channel #1",
	0x2C: "per liter",
	0x2D: "per m^3",
	0x2E: "per kg",
	0x2F: "per K",
	0x30: "per kWh",
	0x31: "per GJ",
	0x32: "per kW",
	0x33: "per (K*l)",
	0x34: "per V",
	0x35: "per A",
	0x36: "multiplied by s",
	0x37: "multiplied by s/V",
	0x38: "multiplied by s/A",
	0x39: "start date(/time) of",
	0x3A: "uncorrected unit",
	0x3B: "accumulation only if positive contributions",
	0x3C: "accumulation of abs value only if negative contributions",
	0x40: "lower limit value",
	0x48: "upper limit value",
	0x41: "number of exceeds of lower limit",
	0x49: "number of exceeds of upper limit",
	0x42: "date of begin of first lower limit exceed",
	0x43: "date of end of first lower limit exceed",
	0x46: "date of begin of last lower limit exceed",
	0x47: "date of end of last lower limit exceed",
	0x4A: "date of begin of first upper limit exceed",
	0x4B: "date of end of first upper limit exceed",
	0x4E: "date of begin of last upper limit exceed",
	0x4F: "date of end of last upper limit exceed",
	0x7E: "future value",
}

// applyVIFE applies one combinable VIFE (extension bit removed) to vi,
// appending what it says of the quantity to the quantity written last to
// tx, and says whether the VIFEs after it are manufacturer specific (0x7F).
func applyVIFE(e byte, vi *valueInfo, tx *text) (manufacturer bool) {
	switch {
	case e >= 0x70 && e <= 0x77:
		// Multiplicative correction factor 10^(nnn-6).
		vi.mult *= pow10(int(e&7) - 6)
		vi.powKnown = false
		return false
	case e == 0x7D:
		vi.mult *= 1000
		vi.powKnown = false
		return false
	case e == 0x7F:
		tx.writeString(" (manufacturer specific VIFE)")
		return true
	case e >= 0x78 && e <= 0x7B:
		tx.writeString(" (additive correction constant)")
		return false
	case e <= 0x1F:
		if s := recordErrors[e]; s != "" {
			tx.writeString(" (record error: ")
			tx.writeString(s)
			tx.writeByte(')')
		} else {
			tx.writeString(" (record error: reserved)")
		}
		return false
	case e >= 0x50 && e <= 0x6F:
		tx.writeString(" (duration of limit exceed)")
		return false
	}
	if s := combinableNames[e&0x7F]; s != "" {
		tx.writeString(" (")
		tx.writeString(s)
		tx.writeByte(')')
		return false
	}
	tx.writeString(" (reserved VIFE)")
	return false
}
