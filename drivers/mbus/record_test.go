package mbus

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

// header72 is a long header: ID 12345678, manufacturer TST, version 1,
// medium water, access 0x2A, status 0, no signature.
var header72 = []byte{0x78, 0x56, 0x34, 0x12, 0x74, 0x52, 0x01, 0x07, 0x2A, 0x00, 0x00, 0x00}

func frame72(records ...byte) []byte {
	return longFrame(0x08, 0x01, ciVariable, append(append([]byte(nil), header72...), records...))
}

// Records built by hand for codings and tables of EN 13757-3 that the
// golden frames do not cover.
func TestDecodeRecords(t *testing.T) {
	cases := []struct {
		name    string
		rec     []byte
		want    Record
		invalid bool
	}{
		{"negative BCD (F in the most significant digit)", []byte{0x0A, 0x5B, 0x34, 0xF2}, Record{Function: FuncInstantaneous, Quantity: "Flow temperature", Unit: "°C", Value: -234.0}, false},
		{"BCD 12 digits", []byte{0x0E, 0x03, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12}, Record{Function: FuncInstantaneous, Quantity: "Energy", Unit: "Wh", Value: 123456789012.0}, false},
		{"int64", []byte{0x07, 0x13, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, Record{Function: FuncInstantaneous, Quantity: "Volume", Unit: "m^3", Value: -0.001}, false},
		{"int48", []byte{0x06, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01}, Record{Function: FuncInstantaneous, Quantity: "Energy", Unit: "Wh", Value: 1099511627777.0}, false},
		{"real", []byte{0x05, 0x2E, 0x00, 0x00, 0xC0, 0x3F}, Record{Function: FuncInstantaneous, Quantity: "Power", Unit: "W", Value: 1500.0}, false},
		{"FB: energy in MWh", []byte{0x04, 0xFB, 0x01, 0x0A, 0x00, 0x00, 0x00}, Record{Function: FuncInstantaneous, Quantity: "Energy", Unit: "Wh", Value: 10e6}, false},
		{"FB: energy in GJ", []byte{0x02, 0xFB, 0x08, 0x05, 0x00}, Record{Function: FuncInstantaneous, Quantity: "Energy", Unit: "J", Value: 0.5e9}, false},
		{"FD: voltage", []byte{0x02, 0xFD, 0x48, 0xE6, 0x08}, Record{Function: FuncInstantaneous, Quantity: "Voltage", Unit: "V", Value: 227.8}, false},
		{"FD: current", []byte{0x02, 0xFD, 0x59, 0x10, 0x27}, Record{Function: FuncInstantaneous, Quantity: "Current", Unit: "A", Value: 10.0}, false},
		{"on time in hours becomes seconds", []byte{0x02, 0x22, 0x02, 0x00}, Record{Function: FuncInstantaneous, Quantity: "On time", Unit: "s", Value: 7200.0}, false},
		{"VIFE multiplicative 10^3 (7Dh)", []byte{0x01, 0x83, 0x7D, 0x02}, Record{Function: FuncInstantaneous, Quantity: "Energy", Unit: "Wh", Value: 2000.0}, false},
		{"VIFE per hour qualifies the quantity", []byte{0x01, 0x93, 0x22, 0x05}, Record{Function: FuncInstantaneous, Quantity: "Volume (per hour)", Unit: "m^3", Value: 0.005}, false},
		{"VIFE record error", []byte{0x01, 0x93, 0x18, 0x05}, Record{Function: FuncInstantaneous, Quantity: "Volume (record error: data error)", Unit: "m^3", Value: 0.005}, false},
		{"storage, tariff and subunit from two DIFEs", []byte{0xC4, 0x9F, 0x40, 0x03, 0x01, 0x00, 0x00, 0x00}, Record{Function: FuncInstantaneous, Storage: 1 | 0xF<<1, Tariff: 1, Device: 2, Quantity: "Energy", Unit: "Wh", Value: 1.0}, false},
		{"maximum with storage 1", []byte{0x52, 0x2B, 0x10, 0x00}, Record{Function: FuncMaximum, Storage: 1, Quantity: "Power", Unit: "W", Value: 16.0}, false},
		{"date type G", []byte{0x02, 0x6C, 0x1F, 0x25}, Record{Function: FuncInstantaneous, Quantity: "Time point (date)", Unit: "-", Value: "2016-05-31"}, false},
		{"date and time type F, invalid", []byte{0x04, 0x6D, 0x99, 0x0F, 0x3F, 0x25}, Record{Function: FuncInstantaneous, Quantity: "Time point (date & time)", Unit: "-", Value: "2017-05-31T15:25:00Z"}, true},
		{"date and time type I", []byte{0x06, 0x6D, 0x2A, 0x19, 0x0F, 0x3F, 0x25, 0x00}, Record{Function: FuncInstantaneous, Quantity: "Time point (date & time)", Unit: "-", Value: "2017-05-31T15:25:42Z"}, false},
		{"LVAR text, sent last character first", []byte{0x0D, 0xFD, 0x0C, 0x03, 'C', 'B', 'A'}, Record{Function: FuncInstantaneous, Quantity: "Model / Version", Value: "ABC"}, false},
		{"LVAR negative BCD", []byte{0x0D, 0x13, 0xD2, 0x34, 0x12}, Record{Function: FuncInstantaneous, Quantity: "Volume", Unit: "m^3", Value: -1.234}, false},
		{"LVAR binary number", []byte{0x0D, 0x13, 0xE2, 0xE8, 0x03}, Record{Function: FuncInstantaneous, Quantity: "Volume", Unit: "m^3", Value: 1.0}, false},
		{"no data", []byte{0x00, 0x13}, Record{Function: FuncInstantaneous, Quantity: "Volume", Unit: "m^3"}, false},
		{"plain-text unit with VIFE", []byte{0x01, 0xFC, 0x02, 'x', 'y', 0x74, 0x64}, Record{Function: FuncInstantaneous, Quantity: "yx", Unit: "-", Value: 1.0}, false},
		{"manufacturer-specific data", []byte{0x0F, 0x01, 0xAB}, Record{Function: FuncManufacturerSpecific, Value: "01 AB"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, err := Decode(frame72(c.rec...))
			if err != nil {
				t.Fatal(err)
			}
			if len(tg.Records) != 1 {
				t.Fatalf("%d records: %+v", len(tg.Records), tg.Records)
			}
			got := tg.Records[0]
			got.Offset = 0
			if f, ok := got.Value.(float64); ok {
				if wf, ok := c.want.Value.(float64); ok && near(f, wf) {
					got.Value = wf
				}
			}
			c.want.Invalid = c.invalid
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestDecodeDecimals: values are the decimals the meter sent, exactly (no
// tolerance): a real (type H) is read as the shortest decimal of its
// float32, and a negative decimal exponent divides instead of multiplying
// by an inexact 0.1.
func TestDecodeDecimals(t *testing.T) {
	for _, c := range []struct {
		name string
		rec  []byte
		want float64
	}{
		{"real 230.1 W", []byte{0x05, 0x2B, 0x9A, 0x19, 0x66, 0x43}, 230.1},
		{"real 230.1 × 10⁻¹ W", []byte{0x05, 0x2A, 0x9A, 0x19, 0x66, 0x43}, 23.01},
		{"3 × 10⁻¹ Wh", []byte{0x01, 0x02, 0x03}, 0.3},
		{"BCD 7 × 10⁻² m³", []byte{0x0A, 0x14, 0x07, 0x00}, 0.07},
		{"fixed-length variable int: 7 × 10⁻¹ Wh", []byte{0x0D, 0x02, 0xE1, 0x07}, 0.7},
	} {
		tg, err := Decode(longFrame(0x08, 0x03, ciVariable, append(append([]byte(nil), header72...), c.rec...)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(tg.Records) != 1 || tg.Records[0].Value != c.want {
			t.Errorf("%s: %+v, want the value %v exactly", c.name, tg.Records, c.want)
		}
	}
}

func TestDecodeHeaders(t *testing.T) {
	// CI 0x7A: short header (access, status, signature), then records.
	tg, err := Decode(longFrame(0x08, 0x03, ciVariableShrt, []byte{0x11, 0x04, 0x00, 0x00, 0x01, 0x13, 0x07}))
	if err != nil {
		t.Fatal(err)
	}
	if tg.Header.AccessNumber != 0x11 || tg.Header.Status != 4 || tg.Header.ID != "" || tg.Records[0].Value != 0.007 {
		t.Errorf("short header: %+v", tg)
	}
	// CI 0x76: mode 2, multi-byte data most significant byte first.
	tg, err = Decode(longFrame(0x08, 0x03, ciVariableMSB, append(append([]byte(nil), header72...), 0x02, 0x13, 0x01, 0x02)))
	if err != nil {
		t.Fatal(err)
	}
	if tg.Header.ID != "12345678" || tg.Header.Manufacturer != "TST" || tg.Records[0].Value != 0.258 {
		t.Errorf("mode 2: %+v", tg)
	}
	if got := tg.Header.SecondaryAddress(); got != "1234567874520107" {
		t.Errorf("secondary address %s", got)
	}
	// More records follow.
	tg, err = Decode(frame72(0x01, 0x13, 0x07, 0x1F))
	if err != nil || !tg.More || tg.Records[1].Function != FuncMoreRecordsFollow {
		t.Errorf("more records: %v %+v", err, tg)
	}
	// Fixed structure, binary counters, stored values.
	tg, err = Decode(longFrame(0x08, 0x03, ciFixed, []byte{0x78, 0x56, 0x34, 0x12, 0x01, 0xC0, 0x2C, 0x05, 0x0A, 0, 0, 0, 0x02, 0, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	if r := tg.Records; r[0].Value != 10.0 || r[0].Unit != "m^3" || r[0].Storage != 1 || r[1].Value != 2000.0 || r[1].Unit != "Wh" {
		t.Errorf("fixed: %+v", tg.Records)
	}
	// JSON shape of `osgate mbus decode`.
	b, _ := json.Marshal(tg.Records[0])
	if string(b) != `{"function":"actual","storage":1,"tariff":0,"device":0,"quantity":"Volume","unit":"m^3","value":10}` {
		t.Errorf("record JSON %s", b)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name   string
		frame  []byte
		offset int
	}{
		{"bad checksum", func() []byte { f := frame72(0x01, 0x13, 0x07); f[len(f)-2]++; return f }(), 22},
		{"reserved LVAR", frame72(0x0D, 0x13, 0xF8), 21},
		{"reserved special DIF", frame72(0x3F), 19},
		{"FD without its second byte", frame72(0x01, 0xFD), 21},
		{"trailing bytes", append(frame72(0x01, 0x13, 0x07), 0x00), 24},
		{"short frame", []byte{0x10, 0x5B, 0x01, 0x5C, 0x16}, 0},
		{"request CI", longFrame(0x53, 0x01, 0x51, nil), 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.frame)
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset != c.offset {
				t.Fatalf("got %v, want a DecodeError at byte %d", err, c.offset)
			}
		})
	}
}

// scale finds the power of ten without a logarithm; it must give what
// core.Scale gives for every factor the VIF tables and VIFEs produce, and
// for factors near them.
func TestScaleIsCoreScale(t *testing.T) {
	var factors []float64
	for e := -30; e <= 30; e++ {
		m := pow10(e)
		factors = append(factors, m, math.Nextafter(m, 0), math.Nextafter(m, math.Inf(1)), m*4.184, m*3600, m*0.028316846592)
		for k := -6; k <= 3; k++ {
			factors = append(factors, m*pow10(k))
		}
	}
	factors = append(factors, 1, 60, 86400, 0, math.SmallestNonzeroFloat64, math.MaxFloat64, math.Inf(1), math.NaN(), -1, -0.001)
	values := []float64{0, 1, -1, 7, 1234567, -230.1, 0.1, 123456789012, 1099511627777, 1 << 60, 3.4028234663852886e+38, 1.5e-7}
	for _, m := range factors {
		for _, v := range values {
			got, want := scale(v, m), core.Scale(v, m)
			if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Errorf("scale(%v, %v) = %v, core.Scale gives %v", v, m, got, want)
			}
		}
	}
	// The VIF tables know their power of ten in advance.
	for _, table := range []*[128]valueInfo{&primaryVIFs, &fbVIFs, &fdVIFs} {
		for i := range table {
			vi := &table[i]
			for _, v := range values {
				if got, want := vi.scale(v), core.Scale(v, vi.mult); math.Float64bits(got) != math.Float64bits(want) {
					t.Errorf("%s: scale(%v) = %v, core.Scale gives %v", vi.quantity, v, got, want)
				}
			}
		}
	}
}
