package mapping

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTZDataBuiltIn: the osgate binary carries the time zone database
// (time/tzdata), so a mapping's zone loads on the appliance, which has no
// /usr/share/zoneinfo.
func TestTZDataBuiltIn(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/osgate/osgate/appliance/cmd/osgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\ntime/tzdata\n") {
		t.Fatal("osgate does not link time/tzdata: a time zone would not load on the appliance")
	}
}
