package ota

import (
	"reflect"
	"strings"
	"testing"
)

func TestFindCmdlines(t *testing.T) {
	img := bootImage(1)
	got := findCmdlines(img)
	if !reflect.DeepEqual(got, wantExtents()) {
		t.Fatalf("findCmdlines = %+v, want %+v", got, wantExtents())
	}
	for _, e := range got {
		if s := string(img[e.Offset : e.Offset+e.Length]); !strings.HasPrefix(s, "console=tty1 ") || !strings.HasSuffix(s, "rootwait"+strings.Repeat(" ", testPad)) {
			t.Errorf("extent %+v holds %q", e, s)
		}
	}
	// As in a real gokrazy boot image: cmdline.txt starts a sector whose
	// previous byte (another file's) is printable, and slack after the
	// padding holds printable bytes too.
	real := noise(6, 4096)
	line := testCmdline + strings.Repeat(" ", testPad)
	real[1023] = 'q'
	copy(real[1024:], line)
	copy(real[1024+len(line):], "JUNK")
	if got := findCmdlines(real); len(got) != 1 || got[0] != (Extent{Offset: 1024, Length: int64(len(line))}) {
		t.Errorf("findCmdlines = %+v, want the line alone at 1024", got)
	}
	if got := findCmdlines(noise(5, 4096)); len(got) != 0 {
		t.Errorf("found command lines in noise: %+v", got)
	}
}

func TestTryBootCmdline(t *testing.T) {
	old := []byte(testCmdline + strings.Repeat(" ", testPad))
	running := "PARTUUID=60c24cc1-f3f9-427a-8199-6f58f0aa0001/PARTNROFF=2"
	got, err := tryBootCmdline(old, running)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(old) {
		t.Fatalf("length changed: %d, was %d", len(got), len(old))
	}
	want := strings.Replace(testCmdline, "/PARTNROFF=1 ", "/PARTNROFF=2 ", 1) + " " + tryFlag
	if s := string(got); strings.TrimRight(s, " ") != want {
		t.Fatalf("patched = %q\nwant      %q", s, want)
	}
	// gokrazy's init then swaps the flag for a shorter one in place: the
	// padding must keep the line well formed.
	again, err := tryBootCmdline(got, "PARTUUID=4a4b4c4d-02") // an MBR disk
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(again), tryFlag) != 1 {
		t.Fatalf("patching twice doubled the flag: %q", again)
	}
	if !strings.Contains(string(again), " root=PARTUUID=4a4b4c4d-02 ") {
		t.Fatalf("MBR root not set: %q", again)
	}
	if _, err := tryBootCmdline([]byte(testCmdline), running); err == nil || !strings.Contains(err.Error(), "room") {
		t.Fatalf("no padding: err = %v, want a room error", err)
	}
	if _, err := tryBootCmdline([]byte("console=tty1 init=/gokrazy/init"+strings.Repeat(" ", 64)), "x"); err == nil {
		t.Fatal("a command line without root= was patched")
	}
	if r, err := rootArg("console=tty1 root=/dev/sda3 ro"); err != nil || r != "/dev/sda3" {
		t.Fatalf("rootArg = %q, %v", r, err)
	}
}
