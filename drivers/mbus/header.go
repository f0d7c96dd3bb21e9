package mbus

import (
	"encoding/binary"
	"fmt"
)

const (
	longHeaderLen  = 12 // ID(4) manufacturer(2) version medium access status signature(2)
	shortHeaderLen = 4  // access status signature(2)
)

// decodeLongHeader decodes the 12-byte header of CI 0x72/0x76 at off and
// returns the offset of the first data record.
func decodeLongHeader(f []byte, off, end int, h *Header, tx *text) (int, error) {
	if end-off < longHeaderLen {
		return 0, errAt(end, "header is truncated: the long header needs %d bytes, %d left", longHeaderLen, end-off)
	}
	b := f[off : off+longHeaderLen]
	h.id = bcdID(b[0:4], tx)
	h.manCode = binary.LittleEndian.Uint16(b[4:6])
	h.manufacturer = manufacturerName(h.manCode, tx)
	h.Version = int(b[6])
	h.MediumCode = int(b[7])
	h.Medium = mediumName(b[7])
	h.AccessNumber = int(b[8])
	h.Status = int(b[9])
	h.Signature = int(binary.LittleEndian.Uint16(b[10:12]))
	return off + longHeaderLen, nil
}

// decodeShortHeader decodes the 4-byte header of CI 0x7A; the meter's
// identity is then only its link-layer address.
func decodeShortHeader(f []byte, off, end int, h *Header) (int, error) {
	if end-off < shortHeaderLen {
		return 0, errAt(end, "header is truncated: the short header needs %d bytes, %d left", shortHeaderLen, end-off)
	}
	b := f[off : off+shortHeaderLen]
	h.AccessNumber = int(b[0])
	h.Status = int(b[1])
	h.Signature = int(binary.LittleEndian.Uint16(b[2:4]))
	h.Medium = mediumName(0x0F)
	h.MediumCode = 0x0F
	return off + shortHeaderLen, nil
}

// bcdID renders 4 BCD bytes, least significant first, as 8 digits. Nibbles
// above 9 are kept as hex digits (F is a wildcard in selections).
func bcdID(b []byte, tx *text) span {
	start := tx.mark()
	for i := 3; i >= 0; i-- {
		tx.hexByte(b[i])
	}
	return tx.from(start)
}

// manufacturerName decodes the EN 13757-3 manufacturer code: three letters
// of 5 bits each, 'A' = 1.
func manufacturerName(v uint16, tx *text) span {
	l := [3]byte{byte(v>>10&0x1F) + 64, byte(v>>5&0x1F) + 64, byte(v&0x1F) + 64}
	start := tx.mark()
	for _, c := range l {
		if c < 'A' || c > 'Z' {
			tx.hexByte(byte(v >> 8))
			tx.hexByte(byte(v))
			return tx.from(start)
		}
	}
	tx.b = append(tx.b, l[:]...)
	return tx.from(start)
}

// mediumNames follows the EN 13757-3 table of device types (medium).
var mediumNames = [0x38]string{
	0x00: "Other",
	0x01: "Oil",
	0x02: "Electricity",
	0x03: "Gas",
	0x04: "Heat: Outlet",
	0x05: "Steam",
	0x06: "Warm water (30-90°C)",
	0x07: "Water",
	0x08: "Heat Cost Allocator",
	0x09: "Compressed air",
	0x0A: "Cooling load meter: Outlet",
	0x0B: "Cooling load meter: Inlet",
	0x0C: "Heat: Inlet",
	0x0D: "Heat / Cooling load meter",
	0x0E: "Bus/System component",
	0x0F: "Unknown Medium",
	0x15: "Hot water (>=90°C)",
	0x16: "Cold water",
	0x17: "Dual register (hot/cold) water",
	0x18: "Pressure",
	0x19: "A/D Converter",
	0x1A: "Smoke detector",
	0x1B: "Room sensor",
	0x1C: "Gas detector",
	0x20: "Breaker (electricity)",
	0x21: "Valve (gas or water)",
	0x25: "Customer unit (display)",
	0x28: "Waste water",
	0x29: "Garbage",
	0x2A: "Carbon dioxide",
	0x31: "Communication controller",
	0x32: "Unidirectional repeater",
	0x33: "Bidirectional repeater",
	0x36: "Radio converter (system side)",
	0x37: "Radio converter (meter side)",
}

// mediumText names every medium byte, the reserved ones "Reserved (0x3F)".
var mediumText = func() (t [256]string) {
	for m := range t {
		if m < len(mediumNames) && mediumNames[m] != "" {
			t[m] = mediumNames[m]
		} else {
			t[m] = fmt.Sprintf("Reserved (0x%02X)", m)
		}
	}
	return t
}()

func mediumName(m byte) string { return mediumText[m] }
