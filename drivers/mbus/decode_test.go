package mbus

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// libmbusXML is the shape of libmbus's normalised decoding (.norm.xml).
type libmbusXML struct {
	Slave struct {
		ID           string `xml:"Id"`
		Manufacturer string `xml:"Manufacturer"`
		Version      string `xml:"Version"`
		AccessNumber string `xml:"AccessNumber"`
		Status       string `xml:"Status"`
		Error        string `xml:"Error"`
	} `xml:"SlaveInformation"`
	Records []struct {
		Function      string `xml:"Function"`
		StorageNumber string `xml:"StorageNumber"`
		Tariff        string `xml:"Tariff"`
		Device        string `xml:"Device"`
		Unit          string `xml:"Unit"`
		Quantity      string `xml:"Quantity"`
		Value         string `xml:"Value"`
	} `xml:"DataRecord"`
}

// asIs reads libmbus's XML as it is: it declares ISO-8859-1 but the
// files are UTF-8.
func asIs(_ string, r io.Reader) (io.Reader, error) { return r, nil }

func readLibmbusXML(t *testing.T, path string) libmbusXML {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var x libmbusXML
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = asIs
	if err := d.Decode(&x); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return x
}

var libmbusFunctions = map[string]string{
	"Instantaneous value":      FuncInstantaneous,
	"Maximum value":            FuncMaximum,
	"Minimum value":            FuncMinimum,
	"Value during error state": FuncError,
	"Actual value":             FuncActual,
	"Manufacturer specific":    FuncManufacturerSpecific,
	"More records follow":      FuncMoreRecordsFollow,
}

func atoi0(t *testing.T, s string) int {
	t.Helper()
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return n
}

// near compares numbers within 1e-6, relative above 1.
func near(a, b float64) bool {
	d := math.Abs(a - b)
	if m := math.Max(math.Abs(a), math.Abs(b)); m > 1 {
		return d <= 1e-6*m
	}
	return d <= 1e-6
}

// fixedUnits: libmbus leaves the fixed data structure (CI 0x73) in the
// meter's units; EN 13757-3 (annex on the fixed data structure, unit codes
// from EN 1434-3) defines them as multiples of SI units, which this decoder
// normalises like the variable structure. Code 0x3E ("same but historic")
// means counter 2 is a stored value in counter 1's unit, so it is storage 1.
var fixedUnits = map[string]struct {
	unit string
	mult float64
}{
	"l":   {"m^3", 1e-3},
	"kWh": {"Wh", 1e3},
}

func TestDecodeGolden(t *testing.T) {
	hexes, err := filepath.Glob("testdata/frames/*.hex")
	if err != nil || len(hexes) == 0 {
		t.Fatalf("no frames in testdata/frames: %v", err)
	}
	records := 0
	for _, path := range hexes {
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := DecodeHex(text)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := readLibmbusXML(t, strings.TrimSuffix(path, ".hex")+".norm.xml")
			checkHeader(t, tg, want)
			if len(tg.Records) != len(want.Records) {
				t.Errorf("%d records, libmbus has %d", len(tg.Records), len(want.Records))
			}
			prev := fixedUnits[""]
			for i := 0; i < len(tg.Records) && i < len(want.Records); i++ {
				got, w := tg.Records[i], want.Records[i]
				if w.Function == "" && w.Unit == "" && w.Value == "" {
					// EN 13757-3 primary VIF table: 7Bh and 7Dh announce the
					// extension tables only with the extension bit set (FBh,
					// FDh); without it the VIF is reserved. libmbus prints an
					// empty record, this decoder a "Reserved" one.
					if got.Quantity != "Reserved" {
						t.Errorf("record %d: libmbus has an empty record, got %+v", i, got)
					}
					continue
				}
				wantFunc, ok := libmbusFunctions[w.Function]
				if !ok {
					t.Fatalf("record %d: unknown libmbus function %q", i, w.Function)
				}
				wantStorage, wantUnit, wantValue := atoi0(t, w.StorageNumber), w.Unit, w.Value
				mult := 1.0
				if tg.CI == ciFixed {
					fu, ok := fixedUnits[w.Unit]
					if w.Unit == "reserved but historic" {
						fu, ok, wantStorage = prev, true, 1
					}
					if !ok {
						t.Fatalf("record %d: no SI conversion for fixed unit %q", i, w.Unit)
					}
					prev, wantUnit, mult = fu, fu.unit, fu.mult
				}
				if got.Function != wantFunc {
					t.Errorf("record %d: function %q, want %q", i, got.Function, wantFunc)
				}
				if got.Storage != wantStorage || got.Tariff != atoi0(t, w.Tariff) || got.Device != atoi0(t, w.Device) {
					t.Errorf("record %d: storage/tariff/device %d/%d/%d, want %d/%s/%s", i, got.Storage, got.Tariff, got.Device, wantStorage, w.Tariff, w.Device)
				}
				if got.Unit != wantUnit {
					t.Errorf("record %d: unit %q, want %q", i, got.Unit, wantUnit)
				}
				checkValue(t, i, got, wantValue, mult)
				records++
			}
		})
	}
	if records < 500 {
		t.Errorf("only %d records compared", records)
	}
}

func checkHeader(t *testing.T, tg *Telegram, want libmbusXML) {
	t.Helper()
	if id := strings.TrimLeft(tg.Header.ID, "0"); id != want.Slave.ID && !(id == "" && want.Slave.ID == "0") {
		t.Errorf("id %q, want %s", tg.Header.ID, want.Slave.ID)
	}
	// libmbus prints code 0000h as "@@@", which is no manufacturer: this
	// decoder prints the code in hex.
	if want.Slave.Manufacturer == "@@@" {
		want.Slave.Manufacturer = "0000"
	}
	if want.Slave.Manufacturer != "" && tg.Header.Manufacturer != want.Slave.Manufacturer {
		t.Errorf("manufacturer %q, want %q", tg.Header.Manufacturer, want.Slave.Manufacturer)
	}
	if want.Slave.Version != "" && strconv.Itoa(tg.Header.Version) != want.Slave.Version {
		t.Errorf("version %d, want %s", tg.Header.Version, want.Slave.Version)
	}
	if strconv.Itoa(tg.Header.AccessNumber) != want.Slave.AccessNumber {
		t.Errorf("access number %d, want %s", tg.Header.AccessNumber, want.Slave.AccessNumber)
	}
	if st, _ := strconv.ParseInt(want.Slave.Status, 16, 32); int(st) != tg.Header.Status {
		t.Errorf("status %02X, want %s", tg.Header.Status, want.Slave.Status)
	}
}

func checkValue(t *testing.T, i int, got Record, want string, mult float64) {
	t.Helper()
	switch v := got.Value.(type) {
	case float64:
		w, err := strconv.ParseFloat(want, 64)
		if err != nil {
			t.Errorf("record %d: value %v, libmbus has %q", i, v, want)
			return
		}
		if !near(v, w*mult) {
			t.Errorf("record %d: value %v, want %v", i, v, w*mult)
		}
	case string:
		// EN 13757-3 Annex A, type F: the IV bit (bit 7 of the minute
		// byte) marks the date/time invalid. libmbus then prints a zero
		// time; this decoder keeps the fields and sets Invalid.
		if got.Invalid && want == "1900-01-00T00:00:00Z" {
			return
		}
		// EN 13757-3 Annex A, type A: BCD digits are 0–9, and Fh only in
		// the most significant digit (a minus sign). libmbus turns other
		// hex digits into a number by dropping high nibbles; this decoder
		// returns the digits as a string instead of a wrong number.
		if _, err := strconv.ParseFloat(want, 64); err == nil && strings.ContainsAny(v, "ABCDEF") {
			return
		}
		if v != want {
			t.Errorf("record %d: value %q, want %q", i, v, want)
		}
	case nil:
		if want != "" {
			t.Errorf("record %d: no value, want %q", i, want)
		}
	default:
		t.Errorf("record %d: value of type %T", i, v)
	}
}

// Every error frame and unsupported frame either decodes or fails with a
// *DecodeError naming a byte inside the frame, or an *ApplicationError.
func TestDecodeErrors(t *testing.T) {
	appErrors := map[string]byte{
		"application_busy": 8, "buffer_too_long": 2, "error": 0, "premature_end_of_record": 4,
		"too_many_difes": 5, "too_many_readouts": 9, "too_many_records": 3, "too_many_vifes": 6,
		"unimplemented_ci": 1, "unspecified_error": 0,
	}
	paths, _ := filepath.Glob("testdata/error-frames/*.hex")
	more, _ := filepath.Glob("testdata/unsupported-frames/*.hex")
	if len(paths) < 20 || len(more) < 6 {
		t.Fatalf("testdata incomplete: %d error frames, %d unsupported frames", len(paths), len(more))
	}
	for _, path := range append(paths, more...) {
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := DecodeHex(text)
			if code, ok := appErrors[name]; ok && strings.Contains(path, "error-frames") {
				var ae *ApplicationError
				if !errors.As(err, &ae) || ae.Code != code {
					t.Fatalf("got %v, want application error %d", err, code)
				}
				return
			}
			if strings.Contains(path, "error-frames") && err == nil {
				t.Fatalf("malformed frame decoded without error: %+v", tg)
			}
			if err == nil {
				t.Logf("decodes: %d records", len(tg.Records))
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				// A file that is not hex bytes at all is rejected by DecodeHex.
				if !strings.Contains(err.Error(), "hex byte") {
					t.Fatalf("error %v is neither a DecodeError nor a hex error", err)
				}
				t.Logf("rejected: %v", err)
				return
			}
			frame, _ := parseHex(text)
			if de.Offset < 0 || de.Offset > len(frame) {
				t.Fatalf("offset %d outside the %d-byte frame: %v", de.Offset, len(frame), err)
			}
			if !strings.Contains(err.Error(), "byte "+strconv.Itoa(de.Offset)) {
				t.Fatalf("message does not name the offset: %v", err)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// Truncating any golden frame anywhere gives an error, never a panic.
func TestDecodeTruncated(t *testing.T) {
	hexes, _ := filepath.Glob("testdata/frames/*.hex")
	for _, path := range hexes {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := parseHex(text)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(frame); n++ {
			if _, err := Decode(frame[:n]); err == nil {
				t.Fatalf("%s cut to %d bytes decodes without error", path, n)
			}
		}
	}
}

func TestDecodeCommand(t *testing.T) {
	text, err := os.ReadFile("testdata/frames/abb_f95.hex")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := DecodeCommand(bytes.NewReader(text), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id": "26718590"`, `"manufacturer": "HYD"`, `"function": "instantaneous"`, `"unit": "m^3"`, `"value": 0.0742`, `"value": "2012-01-13T16:34:00Z"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
	err = DecodeCommand(strings.NewReader("68 04 04 68 08 01 72 ZZ"), &out)
	if err == nil || !strings.Contains(err.Error(), "hex byte 7") {
		t.Errorf("bad hex: %v", err)
	}
	err = DecodeCommand(bufio.NewReader(strings.NewReader("68 04 04 68 08 01 70 08 81 16")), io.Discard)
	var ae *ApplicationError
	if !errors.As(err, &ae) || ae.Code != 8 {
		t.Errorf("application error: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"frames", "error-frames", "unsupported-frames"} {
		paths, _ := filepath.Glob("testdata/" + dir + "/*.hex")
		for _, p := range paths {
			text, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			if frame, err := parseHex(text); err == nil {
				f.Add(frame)
			}
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		tg, err := Decode(frame)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) && (de.Offset < 0 || de.Offset > len(frame)) {
				t.Fatalf("offset %d outside %d-byte frame", de.Offset, len(frame))
			}
			return
		}
		if tg == nil {
			t.Fatal("nil telegram without error")
		}
		for _, r := range tg.Records {
			switch r.Value.(type) {
			case nil, float64, string:
			default:
				t.Fatalf("value of type %T", r.Value)
			}
		}
	})
}
