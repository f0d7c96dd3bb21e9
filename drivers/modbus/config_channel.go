package modbus

import (
	"fmt"
	"strings"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// kind is a Modbus data table.
type kind uint8

const (
	kindCoil     kind = iota // read/write bits, FC 1 / 5
	kindDiscrete             // read-only bits, FC 2
	kindHolding              // read/write registers, FC 3 / 6 / 16
	kindInput                // read-only registers, FC 4
)

var kindNames = map[string]kind{"coil": kindCoil, "discrete": kindDiscrete, "holding": kindHolding, "input": kindInput}

// kindList is kindNames' keys in the order the docs list them.
var kindList = []string{"coil", "discrete", "holding", "input"}

func (k kind) String() string {
	for n, v := range kindNames {
		if v == k {
			return n
		}
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k kind) isBit() bool { return k == kindCoil || k == kindDiscrete }

// dataType is how a channel's registers are read.
type dataType uint8

const (
	typeBool dataType = iota // a coil or discrete input
	typeBit                  // one bit of a register
	typeInt16
	typeUint16
	typeInt32
	typeUint32
	typeInt64
	typeUint64
	typeFloat32
	typeFloat64
	typeString // ASCII, two characters per register, high byte first
)

var typeNames = []string{"bool", "bit", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

func (t dataType) String() string { return typeNames[t] }

// registers is how many registers a fixed-width type occupies.
func (t dataType) registers() int {
	switch t {
	case typeInt32, typeUint32, typeFloat32:
		return 2
	case typeInt64, typeUint64, typeFloat64:
		return 4
	}
	return 1
}

// order is the byte and word order of a multi-byte value. Letters name the
// bytes of a 32-bit value from most significant (A) to least (D) as they
// appear on the wire; 16- and 64-bit values follow the same two rules:
// swap the bytes inside each register (BADC, DCBA) and/or reverse the order
// of the registers (CDAB, DCBA).
type order uint8

const (
	orderABCD order = 0                     // big-endian, high word first
	orderBADC order = swapBytes             // bytes swapped in each register
	orderCDAB order = swapWords             // low word first
	orderDCBA order = swapBytes | swapWords // little-endian
	swapBytes       = 1
	swapWords       = 2
)

var orderNames = map[string]order{"ABCD": orderABCD, "BADC": orderBADC, "CDAB": orderCDAB, "DCBA": orderDCBA}

func (o order) String() string { return [...]string{"ABCD", "BADC", "CDAB", "DCBA"}[o&3] }

// channel is one configured channel, checked and ready to plan.
type channel struct {
	name     string
	unit     string
	writable bool
	kind     kind
	addr     uint16
	typ      dataType
	order    order
	width    int // registers (or bits for coils/discrete inputs) read
	length   int // string length in bytes
	bit      uint8

	// The last value decoded and the wire bytes it came from (see
	// decode); guarded by the device's mu.
	last     any
	lastWire [8]byte
}

type channelSettings struct {
	Register string  `json:"register" strict:"required"`
	Address  *uint16 `json:"address" strict:"required"`
	Type     string  `json:"type"`
	Order    string  `json:"order"`
	Length   int     `json:"length"`
	Bit      *int    `json:"bit"`
}

type deviceSettings struct {
	UnitID *uint8 `json:"unit_id" strict:"required"`
}

// parseDevice checks a device's settings and channels; paths start at the
// device ("unit_id", "channels[3].type").
func parseDevice(d *core.Device) (unit uint8, chans []channel, es strict.Errors) {
	var ds deviceSettings
	if err := strict.Decode(orEmpty(d.Settings), &ds); err != nil {
		es.Merge("", err)
	} else {
		unit = *ds.UnitID
		if unit > 247 && unit != 255 {
			es.Add("unit_id", "must be from 0 to 247 (or 255, common for Modbus TCP), not %d", unit)
		}
	}
	if len(d.Channels) == 0 {
		es.Add("channels", "a modbus device needs at least one channel")
	}
	for i, c := range d.Channels {
		ch, errs := parseChannel(c)
		es.Merge(strict.Index("channels", i), errs.Err())
		chans = append(chans, ch)
	}
	return unit, chans, es
}

func parseChannel(c *core.Channel) (channel, strict.Errors) {
	var es strict.Errors
	var s channelSettings
	if err := strict.Decode(orEmpty(c.Settings), &s); err != nil {
		es.Merge("", err)
		if s.Address == nil || s.Register == "" {
			return channel{}, es // "is required" says it all
		}
		// Go on: an unknown key must not hide a wrong type.
	}
	ch := channel{name: c.Name, unit: c.Unit, writable: c.Writable, addr: *s.Address}
	k, ok := kindNames[s.Register]
	if !ok {
		es.Add("register", "must be \"coil\", \"discrete\", \"holding\" or \"input\", not %q%s", s.Register, strict.DidYouMean(s.Register, kindList))
		return ch, es
	}
	ch.kind = k
	if s.Type == "" {
		s.Type = "uint16"
		if k.isBit() {
			s.Type = "bool"
		}
	}
	t := -1
	for i, n := range typeNames {
		if n == s.Type {
			t = i
		}
	}
	if t < 0 {
		es.Add("type", "%s", strict.OneOf(s.Type, typeNames))
		return ch, es
	}
	ch.typ = dataType(t)
	switch {
	case k.isBit() && ch.typ != typeBool:
		es.Add("type", "a %s is one bit: its type is \"bool\", not %q", k, s.Type)
	case !k.isBit() && ch.typ == typeBool:
		es.Add("type", "\"bool\" is for coils and discrete inputs; for one bit of a register use \"bit\" with \"bit\": 0..15")
	}
	if s.Order == "" {
		s.Order = "ABCD"
	}
	o, ok := orderNames[strings.ToUpper(s.Order)]
	if !ok {
		es.Add("order", "must be \"ABCD\", \"DCBA\", \"BADC\" or \"CDAB\", not %q%s", s.Order, strict.DidYouMean(s.Order, []string{"ABCD", "DCBA", "BADC", "CDAB"}))
	}
	ch.order = o
	if s.Bit != nil && ch.typ != typeBit {
		es.Add("bit", "is only for type \"bit\"")
	}
	if s.Length != 0 && ch.typ != typeString {
		es.Add("length", "is only for type \"string\"")
	}
	ch.width = ch.typ.registers()
	switch ch.typ {
	case typeBit:
		if s.Bit == nil {
			es.Add("bit", "is required for type \"bit\" (0 is the least significant bit)")
		} else if *s.Bit < 0 || *s.Bit > 15 {
			es.Add("bit", "must be from 0 to 15, not %d", *s.Bit)
		} else {
			ch.bit = uint8(*s.Bit)
		}
	case typeString:
		if s.Length < 1 || s.Length > 2*maxRegistersPerRead {
			es.Add("length", "is required for type \"string\": its length in bytes, from 1 to %d", 2*maxRegistersPerRead)
		} else {
			ch.length = s.Length
			ch.width = (s.Length + 1) / 2
		}
	}
	if int(ch.addr)+ch.width > 1<<16 {
		es.Add("address", "%d plus %d registers runs past the last address 65535", ch.addr, ch.width)
	}
	if c.Writable && (k == kindDiscrete || k == kindInput) {
		es.Add("writable", "%s cannot be written; only coils and holding registers can", map[kind]string{kindDiscrete: "a discrete input", kindInput: "an input register"}[k])
	}
	return ch, es
}

func orEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}
