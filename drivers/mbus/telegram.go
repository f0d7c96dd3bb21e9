// Package mbus reads wired M-Bus meters (EN 13757-2 link layer, EN 13757-3
// application layer) over a serial port: it decodes RSP_UD telegrams into
// records with SI units, talks to meters by primary or secondary address,
// scans a bus, and offers all of it as an osgate connector of type "mbus".
package mbus

import "fmt"

// Telegram is one decoded RSP_UD telegram. Its JSON form is what
// `osgate mbus decode` prints.
type Telegram struct {
	Header  Header   `json:"header"`
	Records []Record `json:"records"`

	// Link-layer fields of the frame the telegram came in.
	Control byte `json:"-"`
	Address byte `json:"-"`
	CI      byte `json:"-"`
	// More is set when the meter has more records to send (DIF 0x1F): the
	// master asks again with a toggled FCB.
	More bool `json:"-"`
}

// Header is the fixed part of the application layer: who the meter is.
type Header struct {
	// ID is the identification number, 8 BCD digits ("12345678").
	ID           string `json:"id"`
	Manufacturer string `json:"manufacturer"`
	Version      int    `json:"version"`
	Medium       string `json:"medium"`
	// MediumCode is the medium byte of the header, as in secondary addresses.
	MediumCode   int `json:"medium_code"`
	AccessNumber int `json:"access_number"`
	Status       int `json:"status"`
	Signature    int `json:"signature"`

	manCode uint16 // the manufacturer field as sent

	id, manufacturer span // ID and Manufacturer while the text is written
}

// SecondaryAddress is the header as a 16-hex-digit secondary address: ID,
// manufacturer field (bytes in the order sent, as libmbus prints it),
// version and medium, as used to select the meter.
func (h Header) SecondaryAddress() string {
	return fmt.Sprintf("%s%02X%02X%02X%02X", h.ID, byte(h.manCode), byte(h.manCode>>8), h.Version, h.MediumCode)
}

// Record functions (the DIF's function field, and the special functions).
const (
	FuncInstantaneous        = "instantaneous"
	FuncMaximum              = "maximum"
	FuncMinimum              = "minimum"
	FuncError                = "error"
	FuncActual               = "actual" // fixed data structure
	FuncManufacturerSpecific = "manufacturer_specific"
	FuncMoreRecordsFollow    = "more_records_follow"
)

// Record is one data record of a telegram.
type Record struct {
	Function string `json:"function"`
	Storage  int    `json:"storage"`
	Tariff   int    `json:"tariff"`
	// Device is the sub-unit number (DIFE bit 6).
	Device   int    `json:"device"`
	Quantity string `json:"quantity"`
	// Unit is the SI unit ("Wh", "m^3", "°C"), "-" for dates and plain-text
	// units, "" for numbers without a unit (identifiers, flags).
	Unit string `json:"unit"`
	// Value is a float64 for numbers, a string for dates ("2013-05-31",
	// "2012-07-10T15:25:00Z"), text, and raw bytes (hex, "0A 1B").
	Value any `json:"value"`
	// Invalid is set when the meter marked a date/time as invalid
	// (EN 13757-3 Annex A, type F bit IV).
	Invalid bool `json:"invalid,omitempty"`
	// Offset is the byte offset of the record's DIF in the frame.
	Offset int `json:"-"`
}

// ValueKind says what a Value holds.
type ValueKind uint8

const (
	// ValueNone: the record has no data field (DIF data coding 0).
	ValueNone ValueKind = iota
	// ValueNumber: Num holds the value in the record's unit.
	ValueNumber
	// ValueText: Text holds a date ("2013-05-31", "2012-07-10T15:25:00Z"),
	// plain text, raw bytes in hex ("0A 1B") or BCD digits that are not a
	// number ("12E4").
	ValueText
)

// Value is a record's value without an interface: a number or a text,
// so that decoding it allocates nothing.
type Value struct {
	Kind ValueKind
	Num  float64
	Text string
}

// Any returns the value as Record.Value holds it: nil, a float64 or a
// string.
func (v Value) Any() any {
	switch v.Kind {
	case ValueNumber:
		return v.Num
	case ValueText:
		return v.Text
	}
	return nil
}

func number(f float64) Value { return Value{Kind: ValueNumber, Num: f} }

// Field is a data record as a Decoder holds it: a Record whose value is a
// Value rather than an interface.
type Field struct {
	Function string
	Storage  int
	Tariff   int
	Device   int
	Quantity string
	Unit     string
	Value    Value
	Invalid  bool
	Offset   int

	// Quantity and Value.Text while the frame's text is written.
	qtext, vtext span
}

// setText makes the value the text at s.
func (f *Field) setText(s span) {
	f.Value = Value{Kind: ValueText}
	f.vtext = s
}

// Record returns the field as a Record (its value boxed in an interface).
func (f *Field) Record() Record {
	return Record{
		Function: f.Function, Storage: f.Storage, Tariff: f.Tariff, Device: f.Device,
		Quantity: f.Quantity, Unit: f.Unit, Value: f.Value.Any(), Invalid: f.Invalid, Offset: f.Offset,
	}
}
