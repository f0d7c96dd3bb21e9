package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
	"github.com/osgate/osgate/internal/gokrazyapi"
)

// Escalation: the watchdog's exit makes the supervisor restart the
// gateway, which cures a stuck driver. When restarts do not help (a USB
// adapter wedged in the kernel, a leaking kernel resource), the gateway
// asks gokrazy to reboot the machine: escalateLimit watchdog exits within
// escalateWindow, at most one reboot per rebootGap so that a fault a reboot
// does not cure costs a reboot an hour, not a reboot loop. Exits and
// reboots are kept in a small state file, since each exit ends the process.
const (
	escalateFile   = "watchdog.json" // in the state dir
	escalateLimit  = 3
	escalateWindow = 15 * time.Minute
	rebootGap      = time.Hour
)

// gokrazy's HTTP API on the device and where its password is.
var (
	gokrazyURL       = gokrazyapi.DefaultURL
	gokrazyPasswords = gokrazyapi.RebootPasswordFiles
)

// escalateStuck records one watchdog exit and, when restarts have not
// helped, asks gokrazy to reboot. The watchdog calls it just before it
// exits; it never blocks for long and a failure only logs.
func escalateStuck(stateDir string, log *slog.Logger) {
	if stateDir == "" {
		return // nowhere to count exits
	}
	e := escalation{
		file:      filepath.Join(stateDir, escalateFile),
		now:       time.Now,
		reboot:    gokrazyReboot,
		log:       log,
		limit:     escalateLimit,
		window:    escalateWindow,
		rebootGap: rebootGap,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.record(ctx)
}

type escalation struct {
	file      string
	now       func() time.Time
	reboot    func(ctx context.Context) error
	log       *slog.Logger
	limit     int
	window    time.Duration
	rebootGap time.Duration
}

// escalationState is the state file.
type escalationState struct {
	Exits      []time.Time `json:"exits"`
	LastReboot time.Time   `json:"last_reboot,omitzero"`
}

// record adds an exit and reboots if due; it reports whether it asked for
// a reboot.
func (e *escalation) record(ctx context.Context) bool {
	now := e.now()
	var st escalationState
	if b, err := os.ReadFile(e.file); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			e.log.Warn("watchdog: unreadable escalation state, starting afresh", "file", e.file, "err", err)
			st = escalationState{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		e.log.Warn("watchdog: cannot read escalation state", "file", e.file, "err", err)
	}
	recent := st.Exits[:0]
	for _, t := range st.Exits {
		if now.Sub(t) < e.window && !t.After(now) {
			recent = append(recent, t)
		}
	}
	st.Exits = append(recent, now)
	if len(st.Exits) >= e.limit {
		switch {
		// A last reboot "in the future" counts as recent: a Raspberry Pi
		// boots in 1970 until NTP answers, and must not reboot in a loop.
		case !st.LastReboot.IsZero() && now.Sub(st.LastReboot) < e.rebootGap:
			e.log.Error("watchdog: restarts do not help, but the last reboot was recent; not rebooting again yet",
				"exits", len(st.Exits), "within", e.window, "last_reboot", st.LastReboot)
		default:
			e.log.Error("watchdog: restarts do not help; rebooting the machine", "exits", len(st.Exits), "within", e.window)
			st.LastReboot, st.Exits = now, nil
			if err := e.save(st); err != nil {
				e.log.Warn("watchdog: cannot write escalation state", "file", e.file, "err", err)
			}
			if err := e.reboot(ctx); err != nil {
				e.log.Error("watchdog: reboot failed; restart the machine by hand if the gateway stays stuck", "err", err)
			}
			return true
		}
	}
	if err := e.save(st); err != nil {
		e.log.Warn("watchdog: cannot write escalation state", "file", e.file, "err", err)
	}
	return false
}

func (e *escalation) save(st escalationState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.Write(e.file, b, 0o644)
}

// gokrazyReboot asks gokrazy's init to reboot (POST /reboot with the
// password gokrazy accepts). Off gokrazy (no password file) it does
// nothing: systemd's WatchdogSec and Restart= are the escalation there.
func gokrazyReboot(ctx context.Context) error {
	pw, err := gokrazyapi.ReadPassword(gokrazyPasswords)
	if err != nil {
		return fmt.Errorf("not on gokrazy? cannot reboot through its API: %w", err)
	}
	c := gokrazyapi.Client{URL: gokrazyURL, Password: pw}
	return c.Reboot(ctx, false)
}
