package ota

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestAgentPowerLossAtEveryStep cuts the power at each step of an update
// in turn (every state-file write, every downloaded chunk, before, halfway
// through and after every partition write, the reboot, the switch) and
// then lets the device boot and the agent carry on from its state file.
//
// Before the boot partition is written, a cut leaves the running system as
// it was. A cut halfway through the boot write leaves a torn boot
// partition (the fake still boots from it; real hardware may not, see
// README.md). A cut during the try boot, before the switch, is a failed
// try: the old root comes back and the version is not retried. Every other
// cut ends with the release confirmed.
func TestAgentPowerLossAtEveryStep(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)

	probe := newRig(t, srv.url("stable"), pub)
	if a := probe.run(); a.Status().Last != "confirmed v2.0.0" {
		t.Fatalf("uninterrupted update: %+v", a.Status())
	}
	steps := probe.steps
	down := slices.Index(steps, "down")
	sw := slices.Index(steps, "switch")
	bootHalf := slices.Index(steps, "put boot half")
	if down < 0 || sw < down || bootHalf < 0 || bootHalf > down {
		t.Fatalf("unexpected steps: %v", steps)
	}
	t.Logf("%d steps: %s", len(steps), strings.Join(steps, " | "))

	for k := 1; k <= len(steps); k++ {
		step := steps[k-1]
		r := newRig(t, srv.url("stable"), pub)
		r.cutAt = k
		for {
			_, how := r.boot()
			if how == "cut" {
				break
			}
			if how == "settled" {
				t.Fatalf("cut %d (%s): the agent settled before the step: %v", k, step, r.steps)
			}
			r.dev.powerOn()
		}
		r.cutAt = 0
		if err := r.dev.powerOn(); err != nil {
			t.Fatalf("cut %d (%s): device does not boot: %v", k, step, err)
		}
		if k-1 < bootHalf && (r.dev.version() != "v1.0.0" || !bytes.Equal(r.dev.bootBytes(), bootImage(1))) {
			t.Fatalf("cut %d (%s) before the boot write: running %s, boot partition changed", k, step, r.dev.version())
		}
		a := r.run()
		s := a.Status()
		if r.dev.wroteRunning {
			t.Fatalf("cut %d (%s): the running root was overwritten", k, step)
		}
		part, line := r.dev.bootRoot()
		switch {
		case k-1 > down && k-1 <= sw:
			if !strings.HasPrefix(s.Last, "rolled back: rebooted before confirmation") || r.dev.version() != "v1.0.0" || part != 2 || s.Failed["v2.0.0"] == "" {
				t.Fatalf("cut %d (%s) during the try: %+v, running %s, root partition %d", k, step, s, r.dev.version(), part)
			}
		default:
			if s.Last != "confirmed v2.0.0" || r.dev.version() != "v2.0.0" || part != 3 || len(s.Failed) != 0 {
				t.Fatalf("cut %d (%s): %+v, running %s, root partition %d; boots %v", k, step, s, r.dev.version(), part, r.outcome)
			}
		}
		if strings.Contains(line, tryFlag) {
			t.Fatalf("cut %d (%s): a try flag is left in the boot partition: %q", k, step, line)
		}
		if err := r.dev.powerOn(); err != nil || r.dev.version() != s.Running {
			t.Fatalf("cut %d (%s): the outcome does not survive a reboot: %v, running %s", k, step, err, r.dev.version())
		}
		t.Logf("cut %2d at %-40s -> %s (boots: %s)", k, step, s.Last, strings.Join(r.outcome, ","))
	}
}
