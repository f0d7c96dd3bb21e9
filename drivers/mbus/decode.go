package mbus

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// DecodeError is a malformed frame: what is wrong and at which byte of the
// frame (0 is the first 0x68).
type DecodeError struct {
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("mbus: malformed frame at byte %d: %s", e.Offset, e.Msg)
}

func errAt(off int, format string, args ...any) error {
	return &DecodeError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Control information (CI) fields of telegrams from a meter.
const (
	ciError        = 0x70 // application error
	ciVariable     = 0x72 // variable data structure, long header, LSB first
	ciFixed        = 0x73 // fixed data structure, LSB first
	ciVariableMSB  = 0x76 // variable data structure, mode 2 (MSB first)
	ciFixedMSB     = 0x77 // fixed data structure, MSB first
	ciVariableShrt = 0x7A // variable data structure, short header
)

// offset of the CI field in a long frame; the application data follows it.
const ciOffset = 6

// Decode decodes one long frame (68 L L 68 C A CI … CS 16) from a meter. A
// meter's application error (CI 0x70) is returned as an *ApplicationError,
// a malformed frame as a *DecodeError naming the byte offset.
func Decode(frame []byte) (*Telegram, error) {
	var d Decoder
	// The fields of a frame are gathered on the stack (outside d, which
	// the telegram copies from) and copied once into its records; its text
	// is written to a buffer from a pool and copied once into a string.
	var buf [48]Field
	tx := textPool.Get().(*text)
	fields, err := d.decode(frame, buf[:0], tx)
	tx.b = tx.b[:0]
	textPool.Put(tx)
	if err != nil {
		return nil, err
	}
	return d.telegram(fields), nil
}

// textPool holds the text buffers of Decode, which has no Decoder to keep
// one in.
var textPool = sync.Pool{New: func() any { return new(text) }}

// Decoder decodes frames into storage it keeps and reuses: after Decode,
// its fields describe the frame until the next Decode overwrites them.
// Fields and the buffer the strings are written to keep their arrays from
// frame to frame, and values are not boxed in interfaces, so decoding a
// frame costs one allocation: one string of the frame's text (identifier,
// manufacturer, dates, text values, quantities with VIFE suffixes), of
// which the strings in the fields are parts. Those strings stay valid
// after the next Decode. The zero Decoder is ready; it is not safe for
// concurrent use.
type Decoder struct {
	Header Header
	Fields []Field

	// Link-layer fields of the frame.
	Control byte
	Address byte
	CI      byte
	// More is set when the meter has more records to send (DIF 0x1F).
	More bool

	tx text
}

// Decode decodes one long frame as the package's Decode does, into d. After
// an error, d holds what was decoded before it.
func (d *Decoder) Decode(frame []byte) error {
	return d.decodeAppend(frame, d.Fields[:0])
}

// DecodeMore decodes the next telegram of a readout (the meter's reply
// after one with More set) as Decode does, except that its records are
// appended to Fields: after the last telegram, Fields holds the records
// of the whole readout. Header and the link-layer fields are the new
// telegram's.
func (d *Decoder) DecodeMore(frame []byte) error {
	return d.decodeAppend(frame, d.Fields)
}

func (d *Decoder) decodeAppend(frame []byte, fields []Field) error {
	d.tx.b = d.tx.b[:0]
	var err error
	d.Fields, err = d.decode(frame, fields, &d.tx)
	return err
}

// decode decodes frame into d, appending its records to fields rather than
// d.Fields and writing its text to tx rather than d.tx.
func (d *Decoder) decode(frame []byte, fields []Field, tx *text) ([]Field, error) {
	d.Header = Header{}
	d.More = false
	if err := checkLongFrame(frame); err != nil {
		return fields, err
	}
	d.Control, d.Address, d.CI = frame[4], frame[5], frame[ciOffset]
	first := len(fields)
	fields, err := d.decodeData(frame, fields, tx)
	// The strings of the new fields (and of the header) are parts of one.
	all := string(tx.b)
	d.Header.ID, d.Header.Manufacturer = d.Header.id.in(all), d.Header.manufacturer.in(all)
	for i := first; i < len(fields); i++ {
		f := &fields[i]
		if f.qtext.ok {
			f.Quantity = f.qtext.in(all)
		}
		if f.vtext.ok {
			f.Value.Text = f.vtext.in(all)
		}
	}
	return fields, err
}

// decodeData decodes the application layer after the link-layer fields.
func (d *Decoder) decodeData(frame []byte, fields []Field, tx *text) ([]Field, error) {
	end := len(frame) - 2 // checksum and stop byte
	switch d.CI {
	case ciError:
		return fields, appError(frame[ciOffset+1 : end])
	case ciVariable, ciVariableMSB:
		off, err := decodeLongHeader(frame, ciOffset+1, end, &d.Header, tx)
		if err != nil {
			return fields, err
		}
		return decodeRecords(frame, off, end, d.CI == ciVariableMSB, d, fields, tx)
	case ciVariableShrt:
		off, err := decodeShortHeader(frame, ciOffset+1, end, &d.Header)
		if err != nil {
			return fields, err
		}
		return decodeRecords(frame, off, end, false, d, fields, tx)
	case ciFixed, ciFixedMSB:
		return decodeFixed(frame, ciOffset+1, end, d.CI == ciFixedMSB, d, fields, tx)
	}
	return fields, errAt(ciOffset, "CI field 0x%02X is not a meter response this decoder knows (0x70, 0x72, 0x73, 0x76, 0x77, 0x7A)", d.CI)
}

// Telegram returns the decoded frame as a Telegram of its own (records
// with their values in interfaces), which later Decodes leave alone.
func (d *Decoder) Telegram() *Telegram { return d.telegram(d.Fields) }

func (d *Decoder) telegram(fields []Field) *Telegram {
	t := &Telegram{Header: d.Header, Records: make([]Record, len(fields)),
		Control: d.Control, Address: d.Address, CI: d.CI, More: d.More}
	for i := range fields {
		t.Records[i] = fields[i].Record()
	}
	return t
}

// checkLongFrame checks the EN 13757-2 envelope of a long frame.
func checkLongFrame(f []byte) error {
	switch {
	case len(f) == 0:
		return errAt(0, "empty frame")
	case f[0] != 0x68:
		return errAt(0, "start byte is 0x%02X, want 0x68 (long frame)", f[0])
	case len(f) < 4:
		return errAt(len(f), "frame ends inside the header (%d bytes)", len(f))
	case f[1] != f[2]:
		return errAt(2, "length bytes differ (0x%02X, 0x%02X)", f[1], f[2])
	case f[3] != 0x68:
		return errAt(3, "second start byte is 0x%02X, want 0x68", f[3])
	case int(f[1]) < 3:
		return errAt(1, "length %d is too short for C, A and CI fields", f[1])
	}
	want := int(f[1]) + 6
	if len(f) < want {
		return errAt(len(f), "frame is truncated: length field says %d bytes, got %d", want, len(f))
	}
	if len(f) > want {
		return errAt(want, "%d bytes after the end of the frame", len(f)-want)
	}
	if cs := checksum(f[4 : want-2]); cs != f[want-2] {
		return errAt(want-2, "checksum is 0x%02X, computed 0x%02X", f[want-2], cs)
	}
	if f[want-1] != 0x16 {
		return errAt(want-1, "stop byte is 0x%02X, want 0x16", f[want-1])
	}
	return nil
}

func checksum(b []byte) byte {
	var s byte
	for _, x := range b {
		s += x
	}
	return s
}

// DecodeHex decodes a frame written as hex bytes separated by white space
// ("68 1F 1F 68 08 …"), as in the testdata files and `osgate mbus decode`.
func DecodeHex(text []byte) (*Telegram, error) {
	frame, err := parseHex(text)
	if err != nil {
		return nil, err
	}
	return Decode(frame)
}

func parseHex(text []byte) ([]byte, error) {
	fields := bytes.Fields(text)
	if len(fields) == 0 {
		return nil, errors.New("mbus: no hex bytes in input")
	}
	frame := make([]byte, 0, len(fields))
	for i, f := range fields {
		if len(f) != 2 {
			return nil, fmt.Errorf("mbus: hex byte %d %q: want two hex digits per byte, separated by spaces", i, f)
		}
		v, err := strconv.ParseUint(string(f), 16, 8)
		if err != nil {
			return nil, fmt.Errorf("mbus: hex byte %d %q is not hex", i, f)
		}
		frame = append(frame, byte(v))
	}
	return frame, nil
}
