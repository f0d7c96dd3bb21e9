package mbus

import (
	"strings"
	"testing"
	"time"
)

func TestScan(t *testing.T) {
	t.Parallel() // mostly waits out timeouts on empty addresses
	p := startSlave(t,
		"--slave", "5=testdata/frames/abb_f95.hex",
		"--slave", "0=testdata/frames/kamstrup_382_005.hex@11000000",
		"--slave", "0=testdata/frames/kamstrup_382_005.hex@12000000",
		"--slave", "0=testdata/frames/itron_cf_55.hex@98000001")
	// Silence costs the timeout on every empty address or branch: short,
	// but far above the slave's reply time even on a loaded machine.
	b := NewBus(PortConfig{Path: p.Path, Baud: 9600, Parity: "none", Timeout: time.Second}, nil)
	defer b.Close()
	last := 6
	var progress []ScanProgress
	res, err := b.Scan(testCtx(t), ScanOptions{Last: &last, Progress: func(p ScanProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range res.Meters {
		got = append(got, m.Address+"="+m.Secondary)
	}
	want := []string{
		"5=2671859024232804",
		"110000002D2C0102=110000002D2C0102", // kamstrup_382_005 with its ID patched
		"120000002D2C0102=120000002D2C0102",
		"9800000177040B0C=9800000177040B0C", // itron_cf_55
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("found %q, want %q", got, want)
	}
	if len(res.Collisions) != 1 || !strings.Contains(res.Collisions[0], "primary address 0") {
		t.Errorf("want one collision, at primary address 0: %q", res.Collisions)
	}
	if len(res.Devices) != len(res.Meters) || res.Devices[0].Address != "5" {
		t.Errorf("devices %+v", res.Devices)
	}
	// Primary 0–6: 7 SND_NKE + 2 REQ_UD2 (5 and the collision at 0).
	// Secondary: the root collides, its 10 children are tried, "1" collides
	// and its 10 children are tried: 21 selections, 4 REQ_UD2 (meter 5
	// is read again under its secondary address, and reported once).
	if res.Transactions != 9+21+4 {
		t.Errorf("%d transactions, want %d", res.Transactions, 9+21+4)
	}
	if len(progress) != 7+21 || progress[6].Done != 7 || progress[6].Total != 7 || progress[len(progress)-1].Found != 4 {
		t.Errorf("progress: %+v", progress)
	}
}

// When digits 0–8 below a collision are empty, digit 9 holds the colliding
// meters: the search splits it without probing it.
func TestScanSkipsKnownCollision(t *testing.T) {
	t.Parallel()
	p := startSlave(t,
		"--slave", "0=testdata/frames/kamstrup_382_005.hex@91000000",
		"--slave", "0=testdata/frames/kamstrup_382_005.hex@92000000")
	b := NewBus(PortConfig{Path: p.Path, Baud: 9600, Parity: "none", Timeout: time.Second}, nil)
	defer b.Close()
	res, err := b.Scan(testCtx(t), ScanOptions{Mode: "secondary"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Meters) != 2 || res.Meters[0].Address != "910000002D2C0102" || res.Meters[1].Address != "920000002D2C0102" {
		t.Fatalf("found %+v", res.Meters)
	}
	// The root, 0–8, then 90–99 (9 itself is not probed), and two reads.
	if res.Transactions != 1+9+10+2 {
		t.Errorf("%d transactions, want %d", res.Transactions, 1+9+10+2)
	}
	if strings.Contains(p.Log.String(), "select 9FFFFFFF") {
		t.Errorf("mask 9FFFFFFF… was probed:\n%s", p.Log.String())
	}
}
