//go:build linux

package exepages

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// table is read-only data of this test binary, in its rodata mapping.
var table = strings.Repeat("osgate gives back the pages it does not use. ", 50000)

// TestRelease drops this test binary's own resident pages and checks that
// fewer are resident right after, that the mappings are still there, and
// that code and read-only data read the same afterwards.
func TestRelease(t *testing.T) {
	before := sha256.Sum256([]byte(table))
	r, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resident pages of the executable: %d kB before, %d kB after", r.Before>>10, r.After>>10)
	if r.Before <= 0 {
		t.Fatalf("nothing of the executable was resident before: %+v", r)
	}
	if r.After >= r.Before/2 {
		t.Fatalf("after Release %d bytes of %d still resident: not given back", r.After, r.Before)
	}
	if after := sha256.Sum256([]byte(table)); after != before {
		t.Fatal("read-only data read differently after Release")
	}
	// The mappings are all still there, and the dropped pages come back
	// when used.
	again, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if again.Before <= r.After || again.Before == 0 {
		t.Fatalf("the pages used since were not mapped again: %+v after %+v", again, r)
	}
}
