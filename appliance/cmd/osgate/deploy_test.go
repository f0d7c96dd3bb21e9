package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osgate/osgate/internal/testpeer"
)

// TestSystemdUnit checks deploy/systemd/osgate.service with systemd's own
// tools, offline: it verifies (with this test binary standing in for
// /usr/local/bin/osgate), its exposure is at most 2.0 ("OK"), and it runs
// osgate as its own user with the sandbox the security notes promise.
func TestSystemdUnit(t *testing.T) {
	analyze := testpeer.LookPath(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("../../../deploy/systemd/osgate.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"User=osgate", "Group=osgate", "SupplementaryGroups=dialout", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ReadWritePaths=/var/lib/osgate", "StateDirectory=osgate",
		"CapabilityBoundingSet=\n", "DevicePolicy=closed", "DeviceAllow=char-ttyUSB rw",
		"TimerSlackNSec=1ms", // osgate's own default: it need not start itself again
	} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "osgate.service")
	if err := os.WriteFile(p, []byte(strings.Replace(string(unit), "/usr/local/bin/osgate", self, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", p).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", p).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
	t.Logf("%s", out[max(0, strings.LastIndex(string(out), "Overall")):])
}
