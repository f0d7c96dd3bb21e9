package ota

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/backoff"
	"github.com/osgate/osgate/internal/scope"
)

// Options configure an Agent. URL, PublicKey, Running, StateDir, Updater
// and Health are required.
type Options struct {
	// URL is the channel's manifest.json; parts are fetched relative to
	// it. "{cohort}" in it becomes the gateway's cohort (CohortOf, two
	// digits): the per-cohort manifests of a staged rollout.
	URL       string
	Channel   string            // the manifest's channel must be this one (empty: any)
	PublicKey ed25519.PublicKey // from the image or the local bootstrap file, never a pulled config
	Running   string            // the version of the running system
	Gateway   string            // the gateway's id: its cohort, for "{cohort}" in URL
	StateDir  string            // the agent keeps StateDir/ota (on gokrazy: under /perm)
	Updater   Updater
	Health    func() health.Report
	// ConfirmAfter is how long the new system must be healthy without a
	// break before it confirms itself (default 5m); ConfirmTimeout is how
	// long it may take to get there before it rolls back (default
	// ConfirmAfter + 10m).
	ConfirmAfter   time.Duration
	ConfirmTimeout time.Duration
	AcceptDegraded bool          // count Degraded as healthy (Unhealthy never is)
	Interval       time.Duration // between checks (default 1h)
	Window         string        // optional maintenance window "02:00-04:00" (local time): writing and rebooting wait for it
	Client         *http.Client
	Logger         *slog.Logger
}

// clientTimeout bounds one request to the release server, a download
// of a part included.
const clientTimeout = 30 * time.Minute

// maxAttempts bounds writes of one version (interrupted by restarts or
// power cuts, or refused by the update API) before it counts as failed.
const maxAttempts = 3

// Agent is the update agent. Run drives it; Status and Check serve RPC.
type Agent struct {
	url            string
	cohort         int // -1: the URL is the channel's, not a cohort's
	channel        string
	pub            ed25519.PublicKey
	running        string
	dir            string
	up             Updater
	health         func() health.Report
	confirmAfter   time.Duration
	confirmTimeout time.Duration
	acceptDegraded bool
	interval       time.Duration
	window         *window
	client         *http.Client
	log            *slog.Logger
	checks         chan chan checkResult
	watchdog       string // a hardware watchdog to feed when nobody does (feedOrphanedWatchdog)

	hook       func(step string) // tests: a power cut at each step
	firstCheck time.Duration     // delay of the first check after start

	mu     sync.Mutex
	st     state
	status Status
	etag   string
	// changed is told of each change of Status (OnChange).
	changed func()
}

// Status is what ota.status returns.
type Status struct {
	// State is one of idle, downloading, writing, rebooting, trying,
	// confirmed, rolled back, refused, error.
	State    string            `json:"state"`
	Text     string            `json:"status"` // "downloading 45%", "trying v1.4.0", "rolled back: reason"
	Running  string            `json:"running"`
	Target   string            `json:"target,omitempty"`
	Last     string            `json:"last,omitempty"`   // outcome of the last update: "confirmed v1.4.0", "rolled back: reason"
	Failed   map[string]string `json:"failed,omitempty"` // versions not retried, with why
	Checked  string            `json:"checked,omitempty"`
	Progress int               `json:"progress,omitempty"` // percent, while downloading
	// Cohort is the gateway's rollout cohort, when the agent pulls a
	// cohort's manifest ("{cohort}" in url).
	Cohort *int `json:"cohort,omitempty"`
}

type checkResult struct {
	status Status
	err    error
}

// New makes an Agent and reads its state file.
func New(o Options) (*Agent, error) {
	switch {
	case o.URL == "":
		return nil, errors.New("ota: no manifest URL")
	case strings.Contains(o.URL, CohortPlaceholder) && o.Gateway == "":
		return nil, errors.New("ota: the manifest URL names {cohort} but the gateway id is unknown")
	case len(o.PublicKey) != ed25519.PublicKeySize:
		return nil, errors.New("ota: no public key to verify releases with")
	case o.Running == "":
		return nil, errors.New("ota: running version unknown")
	case o.StateDir == "":
		return nil, errors.New("ota: no state directory")
	case o.Updater == nil || o.Health == nil:
		return nil, errors.New("ota: Updater and Health are required")
	}
	a := &Agent{
		url: o.URL, channel: o.Channel, cohort: -1, pub: o.PublicKey, running: o.Running,
		dir: filepath.Join(o.StateDir, "ota"), up: o.Updater, health: o.Health,
		confirmAfter: o.ConfirmAfter, confirmTimeout: o.ConfirmTimeout,
		acceptDegraded: o.AcceptDegraded, interval: o.Interval,
		client: o.Client, log: o.Logger, checks: make(chan chan checkResult),
		hook: func(string) {},
	}
	if strings.Contains(o.URL, CohortPlaceholder) {
		a.cohort = CohortOf(o.Gateway)
		a.url = strings.ReplaceAll(o.URL, CohortPlaceholder, fmt.Sprintf("%02d", a.cohort))
	}
	if a.confirmAfter <= 0 {
		a.confirmAfter = 5 * time.Minute
	}
	if a.confirmTimeout <= 0 {
		a.confirmTimeout = a.confirmAfter + 10*time.Minute
	}
	if a.interval <= 0 {
		a.interval = time.Hour
	}
	a.firstCheck = backoff.Random(min(a.interval, time.Minute)) // a fleet that boots together spreads its checks
	if a.client == nil {
		a.client = &http.Client{Timeout: clientTimeout}
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if o.Window != "" {
		w, err := parseWindow(o.Window)
		if err != nil {
			return nil, err
		}
		a.window = w
	}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, fmt.Errorf("ota: %w", err)
	}
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	a.st = st
	a.setStatus("idle", "idle", 0)
	if st.Last != "" {
		a.setStatus(lastState(st.Last), st.Last, 0)
	}
	return a, nil
}

// Status returns the agent's state for RPC.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.Running, s.Target, s.Last = a.running, a.st.Target, a.st.Last
	if a.cohort >= 0 {
		c := a.cohort
		s.Cohort = &c
	}
	if len(a.st.Failed) > 0 {
		s.Failed = make(map[string]string, len(a.st.Failed))
		for k, v := range a.st.Failed {
			s.Failed[k] = v
		}
	}
	return s
}

// Check asks Run to check the channel now and returns what it found. It
// fails while an update is under way (including an unconfirmed try).
func (a *Agent) Check(ctx context.Context) (Status, error) {
	reply := make(chan checkResult, 1)
	select {
	case a.checks <- reply:
	case <-ctx.Done():
		return a.Status(), ctx.Err()
	default:
		return a.Status(), errors.New("ota: busy with an update; see ota.status")
	}
	select {
	case r := <-reply:
		return r.status, r.err
	case <-ctx.Done():
		return a.Status(), ctx.Err()
	}
}

// Methods returns the JSON-RPC methods ota.status (scope read) and
// ota.check (scope admin: it may install an update), for
// rpc.Server.Register.
func (a *Agent) Methods() map[string]rpc.Method {
	return map[string]rpc.Method{
		"ota.status": {Scope: scope.Read, Handler: func(context.Context, json.RawMessage) (any, error) { return a.Status(), nil },
			Doc: rpc.Doc{Summary: "The update agent's state: the running version, an update under way and the outcome of the last one.", Result: Status{}}},
		"ota.check": {Scope: scope.Admin, Handler: func(ctx context.Context, _ json.RawMessage) (any, error) {
			s, err := a.Check(ctx)
			if err != nil {
				return nil, err
			}
			return s, nil
		}, Doc: rpc.Doc{Summary: "Look for an update now (and install it as the agent would); returns ota.status afterwards.", Result: Status{}}},
	}
}

func (a *Agent) setStatus(state, text string, progress int) {
	a.mu.Lock()
	a.status.State, a.status.Text, a.status.Progress = state, text, progress
	a.mu.Unlock()
	a.tell()
}

// OnChange has f called (without blocking: it must not call back into
// the agent while it runs) whenever what Status returns changed, so that
// a status document can follow it without asking all the time. Call it
// before Run.
func (a *Agent) OnChange(f func()) { a.changed = f }

func (a *Agent) tell() {
	if a.changed != nil {
		a.changed()
	}
}

func lastState(last string) string {
	for _, s := range []string{"confirmed", "rolled back", "failed"} {
		if len(last) >= len(s) && last[:len(s)] == s {
			return s
		}
	}
	return "idle"
}

// Run finishes or undoes what the state file says was under way, then
// checks the channel every interval (sooner after errors, with jitter)
// and installs what it finds, until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if cl, err := a.up.Cmdline(); a.watchdog != "" && err == nil && slices.Contains(strings.Fields(cl), tryFlag) {
		// A try boot (the kernel was started with the try flag; init then
		// rewrote the file, not /proc/cmdline): gokrazy's init does not
		// feed the watchdog.
		go feedOrphanedWatchdog(ctx, a.watchdog, a.log) // returns when ctx ends
	}
	err := a.resume(ctx)
	if err != nil && ctx.Err() == nil {
		a.log.Error("ota: resuming the update failed", "err", err)
		a.setStatus("error", "error: "+err.Error(), 0)
	}
	failures := 0
	delay := a.firstCheck
	if err != nil {
		failures, delay = 1, nextDelay(a.interval, 1)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		var reply chan checkResult
		a.hook("wait")
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case reply = <-a.checks:
		}
		var err error
		if a.stateCopy().Phase != phaseIdle {
			// An update that stopped on an error (a download cut off, a
			// write refused) is taken up again where it stopped.
			if reply != nil {
				reply <- checkResult{a.Status(), errors.New("ota: busy with an update; see ota.status")}
			}
			err = a.resume(ctx)
		} else {
			err = a.check(ctx, reply)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			a.log.Warn("ota: check failed", "err", err, "failures", failures)
			a.setStatus("error", "error: "+err.Error(), 0)
		} else {
			failures = 0
		}
		timer.Reset(nextDelay(a.interval, failures))
	}
}

// nextDelay: the interval less up to a tenth; after failures a back-off
// from 30s, never beyond the interval (see backoff.Periodic).
func nextDelay(interval time.Duration, failures int) time.Duration {
	return backoff.Periodic(interval, min(30*time.Second, interval), failures)
}
