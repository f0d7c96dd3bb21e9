package mbus

// fdNames holds the plain entries (no unit, factor 1) of the first
// extension table, VIF 0xFD, EN 13757-3 "main VIFE code extension table".
var fdNames = [0x80]string{
	0x08: "Access Number (transmission count)",
	0x09: "Medium",
	0x0A: "Manufacturer",
	0x0B: "Parameter set identification",
	0x0C: "Model / Version",
	0x0D: "Hardware version",
	0x0E: "Firmware version",
	0x0F: "Software version",
	0x10: "Customer location",
	0x11: "Customer",
	0x12: "Access Code User",
	0x13: "Access Code Operator",
	0x14: "Access Code System Operator",
	0x15: "Access Code Developer",
	0x16: "Password",
	0x17: "Error flags",
	0x18: "Error mask",
	0x1A: "Digital Output",
	0x1B: "Digital Input",
	0x1C: "Baudrate",
	0x1D: "Response delay time",
	0x1E: "Retry",
	0x1F: "Remote control",
	0x20: "First storage # for cyclic storage",
	0x21: "Last storage # for cyclic storage",
	0x22: "Size of storage block",
	0x2A: "Operator specific data",
	0x3A: "Dimensionless",
	0x3B: "Register number",
	0x60: "Reset counter",
	0x61: "Cumulation counter",
	0x62: "Control signal",
	0x63: "Day of week",
	0x64: "Week number",
	0x65: "Time point of day change",
	0x66: "State of parameter activation",
	0x67: "Special supplier information",
	0x71: "RF level",
	0x72: "Daylight saving",
	0x73: "Listening window management",
	0x74: "Remaining battery life time",
	0x75: "Number of times the meter was stopped",
	0x76: "Data container for manufacturer specific protocol",
}

// fdVIF decodes the byte after VIF 0xFD, extension bit removed.
func fdVIF(v byte) valueInfo {
	nn := v & 3
	switch {
	case v <= 0x03:
		return num("Credit", "Currency units", int(nn)-3)
	case v <= 0x07:
		return num("Debit", "Currency units", int(nn)-3)
	case v >= 0x24 && v <= 0x27:
		return duration("Storage interval", nn)
	case v == 0x28:
		return num("Storage interval", "month", 0)
	case v == 0x29:
		return num("Storage interval", "year", 0)
	case v == 0x2B:
		return num("Time point (second)", "s", 0)
	case v >= 0x2C && v <= 0x2F:
		return duration("Duration since last readout", nn)
	case v == 0x30:
		return valueInfo{quantity: "Start of tariff", unit: "-", mult: 1, kind: kindDateTime}
	case v >= 0x31 && v <= 0x33:
		return duration("Duration of tariff", nn)
	case v >= 0x34 && v <= 0x37:
		return duration("Period of tariff", nn)
	case v == 0x38:
		return num("Period of tariff", "month", 0)
	case v == 0x39:
		return num("Period of tariff", "year", 0)
	case v >= 0x40 && v <= 0x4F:
		return num("Voltage", "V", int(v&0x0F)-9)
	case v >= 0x50 && v <= 0x5F:
		return num("Current", "A", int(v&0x0F)-12)
	case v >= 0x68 && v <= 0x6B:
		return valueInfo{quantity: "Duration since last cumulation", unit: [4]string{"h", "d", "month", "year"}[nn], mult: 1}
	case v >= 0x6C && v <= 0x6F:
		return valueInfo{quantity: "Operating time battery", unit: [4]string{"h", "d", "month", "year"}[nn], mult: 1}
	case v == 0x70:
		return valueInfo{quantity: "Date and time of battery change", unit: "-", mult: 1, kind: kindDateTime}
	}
	if s := fdNames[v&0x7F]; s != "" {
		return num(s, "", 0)
	}
	return num("Reserved", "", 0)
}

// fbVIF decodes the byte after VIF 0xFB, extension bit removed, EN 13757-3
// "alternate extended VIF code table", normalised to the units of the
// primary table (MWh to Wh, GJ to J, t to kg, MW to W).
func fbVIF(v byte) valueInfo {
	n := int(v & 1)
	nn := int(v & 3)
	switch {
	case v <= 0x01:
		return num("Energy", "Wh", n-1+6)
	case v <= 0x03:
		return num("Reactive energy", "VARh", n+3)
	case v <= 0x05:
		return num("Apparent energy", "VAh", n+3)
	case v >= 0x08 && v <= 0x09:
		return num("Energy", "J", n-1+9)
	case v >= 0x0C && v <= 0x0F:
		// MCal: 1 cal = 4.184 J.
		return valueInfo{quantity: "Energy", unit: "J", mult: pow10(nn-3+6) * 4.184}
	case v >= 0x10 && v <= 0x11:
		return num("Volume", "m^3", n+2)
	case v >= 0x14 && v <= 0x17:
		return num("Reactive power", "VAR", nn)
	case v >= 0x18 && v <= 0x19:
		return num("Mass", "kg", n+2+3)
	case v >= 0x1A && v <= 0x1B:
		return num("Relative humidity", "%", n-1)
	case v == 0x20:
		// 1 cubic foot = 0.028316846592 m^3.
		return valueInfo{quantity: "Volume", unit: "m^3", mult: 0.028316846592}
	case v == 0x21:
		return valueInfo{quantity: "Volume", unit: "m^3", mult: 0.0028316846592}
	case v >= 0x28 && v <= 0x29:
		return num("Power", "W", n-1+6)
	case v == 0x2A:
		return num("Phase U-U", "°", -1)
	case v == 0x2B:
		return num("Phase U-I", "°", -1)
	case v >= 0x2C && v <= 0x2F:
		return num("Frequency", "Hz", nn-3)
	case v >= 0x30 && v <= 0x31:
		return num("Power", "J/h", n-1+9)
	case v >= 0x34 && v <= 0x37:
		return num("Apparent power", "VA", nn)
	case v >= 0x58 && v <= 0x5B:
		return num("Flow temperature", "°F", nn-3)
	case v >= 0x5C && v <= 0x5F:
		return num("Return temperature", "°F", nn-3)
	case v >= 0x60 && v <= 0x63:
		return num("Temperature difference", "°F", nn-3)
	case v >= 0x64 && v <= 0x67:
		return num("External temperature", "°F", nn-3)
	case v >= 0x70 && v <= 0x73:
		return num("Cold / Warm Temperature Limit", "°F", nn-3)
	case v >= 0x74 && v <= 0x77:
		return num("Cold / Warm Temperature Limit", "°C", nn-3)
	case v >= 0x78:
		return num("Cumul count max power", "W", int(v&7)-3)
	}
	return num("Reserved", "", 0)
}
