package mbus

import "encoding/binary"

// The fixed data structure (CI 0x73, 0x77; EN 13757-3 annex on the fixed
// structure, from EN 1434-3): ID(4) access(1) status(1) medium/unit(2)
// counter 1 (4) counter 2 (4).
const fixedLen = 16

const (
	fixedStatusBinary = 0x80 // counters are binary, else BCD
	fixedStatusStored = 0x40 // counters are stored (historic) values
	fixedSameHistoric = 0x3E // unit code: as counter 1, historic value
)

// fixedUnit decodes a 6-bit unit code of the fixed structure, normalised
// to the SI units of the variable structure.
func fixedUnit(c byte) valueInfo {
	switch {
	case c == 0x00:
		return num("Time (h,m,s)", "", 0)
	case c == 0x01:
		return num("Date (D,M,Y)", "", 0)
	case c <= 0x0A: // Wh .. 100 MWh
		return num("Energy", "Wh", int(c-0x02))
	case c <= 0x13: // kJ .. 100 GJ
		return num("Energy", "J", int(c-0x0B)+3)
	case c <= 0x1C: // W .. 100 MW
		return num("Power", "W", int(c-0x14))
	case c <= 0x25: // kJ/h .. 100 GJ/h
		return num("Power", "J/h", int(c-0x1D)+3)
	case c <= 0x2E: // ml .. 100 m^3
		return num("Volume", "m^3", int(c-0x26)-6)
	case c <= 0x37: // ml/h .. 100 m^3/h
		return num("Volume flow", "m^3/h", int(c-0x2F)-6)
	case c == 0x38:
		return num("Temperature", "°C", -3)
	case c == 0x39:
		return valueInfo{quantity: "H.C.A.", unit: "Units for H.C.A.", mult: 1}
	case c == 0x3F:
		return num("Dimensionless", "", 0)
	}
	return num("Reserved", "", 0)
}

func decodeFixed(f []byte, off, end int, msbFirst bool, d *Decoder, fields []Field, tx *text) ([]Field, error) {
	if end-off < fixedLen {
		return fields, errAt(end, "fixed data structure is truncated: needs %d bytes, %d left", fixedLen, end-off)
	}
	if end-off > fixedLen {
		return fields, errAt(off+fixedLen, "%d bytes after the fixed data structure", end-off-fixedLen)
	}
	b := f[off : off+fixedLen]
	status := b[5]
	medium := b[6]>>6 | (b[7]>>6)<<2
	d.Header = Header{
		AccessNumber: int(b[4]),
		Status:       int(status),
		MediumCode:   int(medium),
		Medium:       mediumName(medium),
		id:           bcdID(b[0:4], tx),
	}
	u1, u2 := fixedUnit(b[6]&0x3F), fixedUnit(b[7]&0x3F)
	storage2 := 0
	if b[7]&0x3F == fixedSameHistoric {
		u2, storage2 = u1, 1
	}
	storage1 := 0
	if status&fixedStatusStored != 0 {
		storage1, storage2 = 1, 1
	}
	return append(fields,
		fixedCounter(b[8:12], status, msbFirst, u1, storage1, off+8, tx),
		fixedCounter(b[12:16], status, msbFirst, u2, storage2, off+12, tx)), nil
}

func fixedCounter(c []byte, status byte, msbFirst bool, u valueInfo, storage, off int, tx *text) Field {
	var buf [4]byte
	copy(buf[:], c)
	if msbFirst {
		buf[0], buf[1], buf[2], buf[3] = buf[3], buf[2], buf[1], buf[0]
	}
	r := Field{Function: FuncActual, Storage: storage, Quantity: u.quantity, Unit: u.unit, Offset: off}
	if status&fixedStatusBinary != 0 {
		r.Value = number(u.scale(float64(binary.LittleEndian.Uint32(buf[:]))))
	} else {
		bcdValue(buf[:], false, &u, &r, tx)
	}
	return r
}
