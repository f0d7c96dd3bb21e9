package ota

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/osgate/osgate/appliance/health"
)

// maxTryRestarts bounds restarts of the agent's process during a try boot.
const maxTryRestarts = 3

// resume continues or undoes what the state file says was under way when
// the agent last stopped (a restart, a reboot, a crash or a power cut).
func (a *Agent) resume(ctx context.Context) error {
	st := a.stateCopy()
	if st.Phase == phaseIdle {
		return nil
	}
	boot, err := a.up.BootID()
	if err != nil {
		return err
	}
	rebooted := boot != st.BootID
	onNew := a.running == st.Target
	m, err := a.pending()
	if err != nil {
		a.log.Error("ota: the pending release is unreadable; abandoning it", "err", err)
		return a.fail(st, "failed", err.Error())
	}
	a.log.Info("ota: resuming", "phase", st.Phase, "target", st.Target, "running", a.running, "rebooted", rebooted)
	switch st.Phase {
	case phaseDownloading:
		return a.install(ctx, m)
	case phaseWriting:
		if onNew {
			// The boot write was cut short yet the try boot started: the
			// boot partition is suspect. Back to the old root (the try
			// flag is spent) and write everything again from there.
			st.BootID = boot
			if err := a.save(st); err != nil {
				return err
			}
			return a.reboot(ctx, "rebooting", "interrupted write: rebooting into "+st.Previous+" to write again")
		}
		return a.install(ctx, m)
	case phaseRebooting:
		switch {
		case !rebooted:
			return a.reboot(ctx, "rebooting", "rebooting into "+m.Version)
		case onNew:
			st.Phase, st.BootID = phaseTrying, boot
			if err := a.save(st); err != nil {
				return err
			}
			return a.watch(ctx, st, m)
		}
		return a.fail(st, "rolled back", "the new system did not start or stopped before reporting")
	case phaseTrying:
		switch {
		case onNew && rebooted:
			// Only a confirmed root survives a reboot: the switch was
			// done, the state file not yet written.
			return a.confirmed(st, m)
		case onNew:
			// The process restarted during the try (a crash, gokrazy
			// restarting it): a crash loop never becomes healthy, and the
			// confirm timeout restarts with the process, so count.
			st.Restarts++
			if st.Restarts > maxTryRestarts {
				return a.rollback(ctx, st, fmt.Sprintf("osgate restarted %d times during the try (crash loop?)", st.Restarts))
			}
			if err := a.save(st); err != nil {
				return err
			}
			return a.watch(ctx, st, m)
		}
		reason := st.Reason
		if reason == "" {
			reason = "rebooted before confirmation (crash, watchdog reset or power cut)"
		}
		return a.fail(st, "rolled back", reason)
	case phaseRollback:
		if !rebooted {
			return a.reboot(ctx, "rolling back", "rolling back: "+st.Reason)
		}
		return a.fail(st, "rolled back", st.Reason)
	}
	return a.fail(st, "failed", fmt.Sprintf("unknown phase %q in the state file", st.Phase))
}

// watch runs in the try boot: it confirms after sustained health and rolls
// back on unhealth or when health does not come in time. Degraded counts
// as healthy with accept_degraded, or when the version it replaces was as
// degraded when the update began (no more reasons than then): what was
// wrong in the plant before the update is not the new version's fault.
func (a *Agent) watch(ctx context.Context, st state, m *Manifest) error {
	a.setStatus("trying", "trying "+m.Version, 0)
	a.log.Info("ota: trying the new root; confirming after sustained health", "version", m.Version, "after", a.confirmAfter)
	tick := min(max(a.confirmAfter/10, 10*time.Millisecond), 5*time.Second)
	start := time.Now()
	var since time.Time
	for {
		r := a.health()
		now := time.Now()
		why := r.TrialFailure() // unhealthy, or every connector failing
		switch {
		case why != "":
			return a.rollback(ctx, st, "unhealthy: "+why)
		case r.Status == health.OK || r.Status == health.Degraded && (a.acceptDegraded || len(r.Reasons) <= st.Baseline):
			if since.IsZero() {
				since = now
			}
			if now.Sub(since) >= a.confirmAfter {
				return a.confirm(ctx, st, m)
			}
		default:
			since = time.Time{}
		}
		if now.Sub(start) > a.confirmTimeout {
			return a.rollback(ctx, st, fmt.Sprintf("not healthy for %s within %s (last: %s %s)", a.confirmAfter, a.confirmTimeout, r.Status, strings.Join(r.Reasons, "; ")))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(tick):
		}
	}
}

func (a *Agent) confirm(ctx context.Context, st state, m *Manifest) error {
	if err := a.up.Switch(ctx); err != nil {
		return a.rollback(ctx, st, "confirming failed: "+err.Error())
	}
	return a.confirmed(st, m)
}

func (a *Agent) confirmed(st state, m *Manifest) error {
	mbr := st.InstalledMBR
	if p, ok := m.Parts[MBR]; ok {
		mbr = p.Sha256
	}
	text := "confirmed " + st.Target
	st = state{Failed: st.Failed, Last: text, InstalledMBR: mbr}
	if err := a.save(st); err != nil {
		return err
	}
	a.cleanup()
	otaUpdates.WithLabelValues("confirmed").Inc()
	a.log.Info("ota: update confirmed", "version", m.Version)
	a.setStatus("confirmed", text, 0)
	return nil
}

func (a *Agent) rollback(ctx context.Context, st state, reason string) error {
	a.log.Error("ota: rolling back", "version", st.Target, "reason", reason)
	boot, err := a.up.BootID()
	if err != nil {
		return err
	}
	st.Phase, st.Reason, st.BootID = phaseRollback, reason, boot
	if err := a.save(st); err != nil {
		return err
	}
	return a.reboot(ctx, "rolling back", "rolling back: "+reason)
}

// fail ends an update that did not succeed: the version is remembered and
// not tried again.
func (a *Agent) fail(st state, outcome, reason string) error {
	if st.Failed == nil {
		st.Failed = map[string]string{}
	}
	if st.Target != "" {
		st.Failed[st.Target] = reason
	}
	text := outcome + ": " + reason
	st = state{Failed: st.Failed, Last: text, InstalledMBR: st.InstalledMBR}
	if err := a.save(st); err != nil {
		return err
	}
	a.cleanup()
	otaUpdates.WithLabelValues(strings.ReplaceAll(outcome, " ", "_")).Inc()
	a.log.Error("ota: update "+outcome, "reason", reason)
	a.setStatus(outcome, text, 0)
	return nil
}

// cleanup removes downloaded parts and the pending manifest.
func (a *Agent) cleanup() {
	for _, p := range []string{"parts", "manifest.json", "manifest.json.sig"} {
		if err := os.RemoveAll(filepath.Join(a.dir, p)); err != nil {
			a.log.Warn("ota: cleanup", "err", err)
		}
	}
}
