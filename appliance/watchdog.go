package appliance

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/osgate/osgate/appliance/health"
)

// watchdog reads the one health model and acts on it:
//
//   - liveness: when a watched loop (a poll that overran its timeout by
//     pollGrace, i.e. a driver stuck in I/O that ignores its context) stays
//     stale for stuckAfter, the process exits with exitStuck so its
//     supervisor (gokrazy, systemd) restarts it. Restarting loses nothing:
//     the export spool and the MQTT store are on disk.
//   - systemd: under a unit with Type=notify and WatchdogSec=, READY=1 is
//     sent once running and WATCHDOG=1 at half the watchdog period, but only
//     while the gateway is not unhealthy, so systemd restarts a gateway that
//     stays unhealthy.
type watchdog struct {
	health     *health.Model
	log        *slog.Logger
	every      time.Duration
	stuckAfter time.Duration
	exit       func(code int) // os.Exit; tests replace it
	// stateDir keeps the count of watchdog exits, for escalation to a
	// reboot when restarts do not help.
	stateDir string
}

// exitStuck is the exit code of a gateway the watchdog killed.
const exitStuck = 70

func (w *watchdog) run(ctx context.Context) {
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		w.log.Warn("sd_notify READY failed", "err", err)
	} else if ok {
		w.log.Info("told systemd we are ready")
	}
	every := w.every
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		every = min(every, wd/2)
		w.log.Info("systemd watchdog enabled", "period", wd)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var stuckSince time.Time
	for {
		select {
		case <-ctx.Done():
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			return
		case <-t.C:
		}
		r := w.health.Report()
		if !r.Live {
			if stuckSince.IsZero() {
				stuckSince = time.Now()
				w.log.Error("gateway stopped making progress", "reasons", r.Reasons)
			}
			if time.Since(stuckSince) >= w.stuckAfter {
				w.log.Error("watchdog: exiting so the supervisor restarts the gateway", "reasons", r.Reasons, "code", exitStuck)
				escalateStuck(w.stateDir, w.log)
				w.exit(exitStuck)
				return
			}
		} else {
			stuckSince = time.Time{}
		}
		if r.Status != health.Unhealthy {
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}

func newWatchdog(h *health.Model, log *slog.Logger) *watchdog {
	return &watchdog{health: h, log: log, every: 5 * time.Second, stuckAfter: 10 * time.Second, exit: os.Exit}
}
