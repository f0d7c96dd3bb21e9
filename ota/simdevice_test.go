//go:build testhook

package ota

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSimDevice: the fleet simulation's stand-in for gokrazy boots as the
// fake device does: a written root is tried once after a reboot, a second
// reboot without a switch returns to the old root, a switch makes the new
// one stay; a restart of the process is no reboot; the health knob comes
// with the root.
func TestSimDevice(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenSimDevice(dir, "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	stops := 0
	reopen := func() *SimDevice {
		t.Helper()
		n, err := OpenSimDevice(dir, "ignored")
		if err != nil {
			t.Fatal(err)
		}
		n.stop = func() error { stops++; return nil }
		return n
	}
	d := reopen()
	boot0, _ := d.BootID()
	if d.Version() != "v1.0.0" || d.Unhealthy() != "" {
		t.Fatalf("first boot: %s %q", d.Version(), d.Unhealthy())
	}
	install := func(d *SimDevice, version, unhealthy string) {
		t.Helper()
		cl, _ := d.Cmdline()
		root, err := rootArg(cl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Put(context.Background(), Root, bytes.NewReader(SimRootImage(version, unhealthy))); err != nil {
			t.Fatal(err)
		}
		boot := SimBootImage()
		for _, e := range findCmdlines(boot) {
			p, err := tryBootCmdline(boot[e.Offset:e.Offset+e.Length], root)
			if err != nil {
				t.Fatal(err)
			}
			copy(boot[e.Offset:], p)
		}
		if _, err := d.Put(context.Background(), Boot, bytes.NewReader(boot)); err != nil {
			t.Fatal(err)
		}
		if err := d.Reboot(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	install(d, "v2.0.0", "testhook: v2.0.0 breaks")
	if stops != 1 {
		t.Fatalf("reboot stopped the process %d times", stops)
	}
	d = reopen()
	if cl, _ := d.Cmdline(); d.Version() != "v2.0.0" || d.Unhealthy() != "testhook: v2.0.0 breaks" || !strings.Contains(cl, tryFlag) {
		t.Fatalf("try boot: %s %q %q", d.Version(), d.Unhealthy(), cl)
	}
	id, _ := d.BootID()
	if d = reopen(); d.Version() != "v2.0.0" {
		t.Fatalf("a restart of the process booted: %s", d.Version())
	}
	if again, _ := d.BootID(); again != id || again == boot0 {
		t.Fatalf("boot ids %s, %s (first %s)", id, again, boot0)
	}
	d.Reboot(context.Background()) // unconfirmed: back to v1
	if d = reopen(); d.Version() != "v1.0.0" || d.Unhealthy() != "" {
		t.Fatalf("after an unconfirmed try: %s %q", d.Version(), d.Unhealthy())
	}
	install(d, "v3.0.0", "")
	d = reopen()
	if err := d.Switch(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.Reboot(context.Background())
	if d = reopen(); d.Version() != "v3.0.0" {
		t.Fatalf("after a confirmed try and a reboot: %s", d.Version())
	}
}
