package zwave

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// The QR codes and home ids below were checked with zwave-js
// (parseQRCodeString, nwiHomeIdFromDSK, authHomeIdFromDSK), an independent
// implementation of the same specification.
const (
	qrZeroDSK = "900143047006000000000000000000000000000000000000000000100025800002022000004000050000601800080201"
	qrSample  = "900153553003510472846630175291164912001258334570322500100025800002022000004000050000601800080201"
	dskSample = "51047-28466-30175-29116-49120-01258-33457-03225"
)

func TestParseDSKInput(t *testing.T) {
	for _, tc := range []struct {
		in, dsk, classes string
	}{
		{dskSample, dskSample, "[]"},
		{"  " + strings.ReplaceAll(dskSample, "-", "") + " ", dskSample, "[]"},
		{strings.ReplaceAll(dskSample, "-", " "), dskSample, "[]"},
		{qrSample, dskSample, "[s2_authenticated s2_unauthenticated]"},
		{qrZeroDSK, "00000-00000-00000-00000-00000-00000-00000-00000", "[s2_access_control s2_authenticated]"},
	} {
		d, cl, err := parseDSKInput(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if formatDSK(d[:]) != tc.dsk || fmt.Sprint(cl) != tc.classes {
			t.Errorf("%q: %s %v, want %s %s", tc.in, formatDSK(d[:]), cl, tc.dsk, tc.classes)
		}
	}
	for _, bad := range []string{
		"", "12345", "51047-28466-30175-29116-49120-01258-33457", "51047-28466-30175-29116-49120-01258-33457-03225-00000",
		"65536-28466-30175-29116-49120-01258-33457-03225", "5104-728466-30175-29116-49120-01258-33457-03225",
		"5104a-28466-30175-29116-49120-01258-33457-03225",
		strings.Replace(qrSample, "9001535", "9001536", 1), // checksum
		"9002" + qrSample[4:],                              // version
	} {
		if _, _, err := parseDSKInput(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if len(bad) >= 5 && bad[:5] != "90015" && strings.Contains(err.Error(), bad[:5]) {
			t.Errorf("%q: the PIN is in the error %v", bad, err)
		}
	}
}

func TestSmartStartHomeIDs(t *testing.T) {
	d, err := parseDSK(dskSample)
	must(t, err, "dsk")
	nwi, auth := nwiHomeID(d[:]), authHomeID(d[:])
	if hex.EncodeToString(nwi[:]) != "ffe004ea" || hex.EncodeToString(auth[:]) != "02b10c99" {
		t.Fatalf("home ids %x %x, want ffe004ea 02b10c99", nwi, auth)
	}
	if m := maskDSK(d[:]); m != "*****-28466-30175-29116-49120-01258-33457-03225" {
		t.Fatalf("masked %s", m)
	}
	h, err := parseSmartStartUpdate([]byte{0x85, 0, 0, 0xFF, 0xE0, 0x04, 0xEA, 4, 4, 0x21, 1, 0x9F})
	if err != nil || h != nwi {
		t.Fatalf("announcement: %x %v", h, err)
	}
}

func FuzzParseDSKInput(f *testing.F) {
	for _, s := range []string{dskSample, qrSample, qrZeroDSK, strings.ReplaceAll(dskSample, "-", ""), "90", "99999-", "*****-28466"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, cl, err := parseDSKInput(s)
		if err != nil {
			// (00000 and 65535 are in the text of the range.)
			if len(s) >= 5 && isDigits(s[:5]) && s[:5] != "00000" && s[:5] != "65535" && !strings.HasPrefix(s, "90") && strings.Contains(err.Error(), s[:5]) {
				t.Fatalf("the PIN of %q is in the error: %v", s, err)
			}
			return
		}
		// What parses prints back to a DSK that parses to the same bytes.
		d2, err := parseDSK(formatDSK(d[:]))
		if err != nil || d2 != d {
			t.Fatalf("%q: %s does not parse back: %v", s, formatDSK(d[:]), err)
		}
		for _, c := range cl {
			if c == secNone || c == secTemp {
				t.Fatalf("%q: class %v", s, c)
			}
		}
	})
}

func FuzzSmartStartUpdate(f *testing.F) {
	f.Add([]byte{0x85, 0, 0, 0xFF, 0xE0, 0x04, 0xEA, 4, 4, 0x21, 1, 0x9F})
	f.Add([]byte{0x85, 0, 0})
	f.Add([]byte{0x84, 2, 3, 4, 0x10, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ctl := fuzzConnector(t)
		// A list with one entry, listening: the announcement is matched.
		d, _ := parseDSK(dskSample)
		c.ss.loaded, c.ss.entries, c.ss.listenCtl = true, []*provisionEntry{{DSK: dskSample, dsk: d}}, ctl
		c.ss.including = true // no inclusion from the fuzzer
		c.unsolicited(ctl, frame{Type: typeRequest, Func: fnAppUpdate, Data: b})
	})
}
