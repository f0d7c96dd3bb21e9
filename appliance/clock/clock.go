// Package clock keeps the gateway's time: it restores the clock at start
// (never earlier than the build time or the last time it saved), asks the
// configured time sources in order (NTP servers, the HTTPS Date of a
// server, a real-time clock, or the operating system), sets the system
// clock from them where it is allowed to, and says whether readings can
// be trusted to be stamped right (Synced) or should wait for a source
// (Hold).
package clock

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/lograte"
	"github.com/osgate/osgate/internal/timesource"
)

// State is what the clock knows about its time.
type State string

const (
	// Synced: a time source set the clock or confirmed it.
	Synced State = "synced"
	// Restored: no source has answered; the clock runs from the last
	// saved time or the build time, whichever is later.
	Restored State = "restored"
	// Unsynced: no source has answered; the clock is what the system
	// says, which is past the build time but unconfirmed.
	Unsynced State = "unsynced"
)

// MinFloor is the earliest time the clock is ever restored to, for
// builds that carry no build time.
var MinFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Defaults of the clock block.
const (
	DefaultHold     = timesource.DefaultHold
	DefaultInterval = timesource.DefaultInterval
	DefaultNTP      = timesource.DefaultNTP
	// DefaultRTC is the real-time clock device.
	DefaultRTC = "/dev/rtc0"
)

const (
	// queryTimeout bounds one question to one source.
	queryTimeout = 5 * time.Second
	// stepThreshold: a larger correction steps the clock, a smaller one
	// is slewed (the clock runs slightly fast or slow until it is right).
	stepThreshold = 128 * time.Millisecond
	// tolerance: without clock.set_system, a source confirms the system
	// clock when they agree this closely.
	tolerance = time.Second
	// saveEvery is how often the time is saved to the state dir.
	saveEvery = time.Minute
	// retryMin and retryMax space the rounds of questions while no
	// source answers.
	retryMin = 5 * time.Second
	retryMax = time.Minute
)

// SystemClock is the operating system's clock (tests replace it).
type SystemClock interface {
	Now() time.Time
	// Step sets the clock to t.
	Step(t time.Time) error
	// Slew corrects the clock by d gradually.
	Slew(d time.Duration) error
	// Boot is the id of this boot and the time since it began.
	Boot() (id string, since time.Duration)
}

// Options configure a Clock.
type Options struct {
	// Sources are asked in order; the first that answers sets the time.
	Sources []Source
	// SetSystem lets the clock set the system clock (the appliance; it
	// needs CAP_SYS_TIME). Without it the system clock is left alone:
	// sources only confirm it, and a clock before the build time is
	// replaced in the gateway's own stamps only.
	SetSystem bool
	// Hold is how long after start readings wait for a time source
	// before they are exported stamped from the restored clock.
	Hold time.Duration
	// Interval between questions once a source has answered.
	Interval time.Duration
	// StateDir keeps StateFile (SetSystem only); "" keeps nothing.
	StateDir string
	// BuildTime is when this osgate was built: the clock is never
	// restored earlier. Zero: MinFloor.
	BuildTime time.Time
	// RemoteURL and RemoteTLS are the fleet config server's, for the
	// source "remote".
	RemoteURL string
	RemoteTLS *tls.Config
	// HTTPSTLS is the TLS setting of https:// sources (nil: the system's
	// CAs).
	HTTPSTLS *tls.Config
	// RTCDevice is the device of the source "rtc" without a device, and
	// the clock written after a network source set the time (default
	// DefaultRTC; a board profile may name another).
	RTCDevice string
	Logger    *slog.Logger
	// System is the clock to keep (nil: the operating system's).
	System SystemClock
}

// Clock is the gateway's time keeper. Make one with New, run it with Run.
type Clock struct {
	sources   []Source
	set       bool
	hold      time.Duration
	interval  time.Duration
	statePath string
	build     time.Time // the build floor
	floor     time.Time // build time or saved time, whichever is later
	floorFrom string    // "build" or "saved"
	remoteURL string
	remoteTLS *tls.Config
	httpsTLS  *tls.Config
	rtcDev    string
	log       *slog.Logger
	sys       SystemClock
	start     time.Time
	bootID    string

	// readRTC and writeRTC reach the hardware (tests replace them).
	readRTC  func(dev string) (time.Time, error)
	writeRTC func(dev string, t time.Time) error
	// timeout bounds one question to one source.
	timeout time.Duration

	synced atomic.Bool
	mu     sync.Mutex
	state  State
	source string
	last   time.Time // last sync
	offset time.Duration
	errs   []string
	warned map[string]bool
	// failLog: a round that no source answered is logged once every ten
	// minutes.
	failLog lograte.Limit
}

// New restores the clock: a system clock earlier than the floor (the
// build time, or the time last saved to the state dir when the clock may
// be set) is set to the floor with SetSystem, or else replaced by the
// floor plus the time since start in Now. A `system` source counts at
// once when the system clock is past the build time.
func New(o Options) *Clock {
	c := &Clock{
		sources: o.Sources, set: o.SetSystem, hold: o.Hold, interval: o.Interval,
		remoteURL: o.RemoteURL, remoteTLS: o.RemoteTLS, httpsTLS: o.HTTPSTLS,
		rtcDev: o.RTCDevice, log: o.Logger, sys: o.System,
		readRTC: readRTC, writeRTC: writeRTC, warned: map[string]bool{},
		failLog: lograte.Limit{Burst: 1, Window: 10 * time.Minute},
		timeout: queryTimeout,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.sys == nil {
		c.sys = osSystem{}
	}
	if c.rtcDev == "" {
		c.rtcDev = DefaultRTC
	}
	if c.hold < 0 {
		c.hold = 0
	}
	if c.interval <= 0 {
		c.interval = DefaultInterval
	}
	c.start = time.Now()
	c.build = MinFloor
	if o.BuildTime.After(c.build) {
		c.build = o.BuildTime
	}
	c.floor, c.floorFrom = c.build, "build"
	c.bootID, _ = c.sys.Boot()
	var st saved
	if c.set && o.StateDir != "" {
		c.statePath = filepath.Join(o.StateDir, StateFile)
		var err error
		if st, err = readState(c.statePath); err != nil {
			c.log.Warn("clock: the saved time cannot be read; restoring from the build time only", "err", err)
		}
		if st.Time.After(c.floor) {
			c.floor, c.floorFrom = st.Time, "saved"
		}
	}
	now := c.sys.Now()
	sameBoot := c.bootID != "" && st.BootID == c.bootID
	switch {
	case now.Before(c.floor):
		c.state, c.source = Restored, c.floorFrom
		if !c.set {
			c.log.Warn("clock: the system clock is before this build of osgate and osgate may not set it (clock.set_system false): readings are stamped from the "+c.floorFrom+" time plus the time since start, quality uncertain, until the system clock is set",
				"system", now.UTC().Format(time.RFC3339), "floor", c.floor.UTC().Format(time.RFC3339))
		} else if err := c.sys.Step(c.floor); err != nil {
			c.log.Error("clock: cannot restore the system clock (osgate needs CAP_SYS_TIME, or set clock.set_system false): readings are stamped from osgate's own restored time",
				"err", err, "floor", c.floor.UTC().Format(time.RFC3339))
		} else {
			c.log.Info("clock: restored the system clock to the "+c.floorFrom+" time; readings wait for a time source", "time", c.floor.UTC().Format(time.RFC3339), "was", now.UTC().Format(time.RFC3339))
		}
	case sameBoot && st.State != "":
		// osgate restarted within one boot: the clock is as it left it.
		c.state, c.source, c.last = st.State, st.Source, st.LastSync
	default:
		c.state, c.source = Unsynced, "system"
	}
	if c.state != Synced {
		for _, s := range c.sources {
			if s.Kind == System && !now.Before(c.build) {
				c.state, c.source, c.last = Synced, s.String(), now
				break
			}
		}
	}
	c.synced.Store(c.state == Synced)
	c.save()
	return c
}

// Now is the gateway's time: the system clock, or while that is before
// the floor (it may not be set), the floor plus the time since start.
func (c *Clock) Now() time.Time {
	t := c.sys.Now()
	if t.Before(c.floor) {
		return c.floor.Add(time.Since(c.start))
	}
	return t
}

// Stamp maps a time a connector took from the system clock to the
// gateway's time: unchanged unless it is before the floor (the system
// clock was not set), then moved as far as Now is from the system clock.
func (c *Clock) Stamp(t time.Time) time.Time {
	if !t.Before(c.floor) {
		return t
	}
	sys := c.sys.Now()
	if sys.Before(c.floor) {
		if m := c.Now().Add(t.Sub(sys)); m.After(c.floor) {
			return m
		}
		return c.floor // taken before start
	}
	return c.Now() // taken before the system clock was set since
}

// Synced reports whether a time source has set or confirmed the clock:
// until then readings are of quality uncertain.
func (c *Clock) Synced() bool { return c.synced.Load() }

// Hold reports whether readings should wait (on disk) for a time source:
// none has answered and the hold since start has not passed.
func (c *Clock) Hold() bool {
	return !c.synced.Load() && time.Since(c.start) < c.hold
}

// Floor is the earliest time the clock is restored to.
func (c *Clock) Floor() time.Time { return c.floor }

// Mark is a point on this boot's time line, to find out later how far
// the clock was moved since (Moved).
type Mark struct {
	Boot  string        `json:"boot,omitempty"`
	Since time.Duration `json:"since,omitempty"`
	Wall  time.Time     `json:"wall"`
}

// Mark is now on this boot's time line.
func (c *Clock) Mark() Mark {
	id, since := c.sys.Boot()
	return Mark{Boot: id, Since: since, Wall: c.Now()}
}

// Moved is how far the clock was set forward (negative: back) since m;
// false when m is of another boot, where nothing can be known.
func (c *Clock) Moved(m Mark) (time.Duration, bool) {
	id, since := c.sys.Boot()
	if id == "" || id != m.Boot {
		return 0, false
	}
	return c.Now().Sub(m.Wall) - (since - m.Since), true
}

// Run asks the sources until ctx ends: at once, then every Interval
// after an answer, or sooner (5 s, doubling to a minute) while none
// answers. With SetSystem it saves the time every minute and when it
// returns.
func (c *Clock) Run(ctx context.Context) {
	c.report()
	defer c.save()
	saveT := time.NewTicker(saveEvery)
	defer saveT.Stop()
	if c.statePath == "" {
		saveT.Stop() // nothing to save: no need to wake up for it
	}
	next := time.NewTimer(0)
	defer next.Stop()
	retry := retryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-saveT.C:
			c.save()
		case <-next.C:
			if c.round(ctx) {
				retry = retryMin
				next.Reset(c.interval)
			} else {
				next.Reset(retry)
				retry = min(retry*2, retryMax)
			}
		}
	}
}

// round asks the sources in order until one answers; it reports whether
// one did.
func (c *Clock) round(ctx context.Context) bool {
	if len(c.sources) == 0 {
		return false
	}
	var errs []string
	for _, s := range c.sources {
		qctx, cancel := context.WithTimeout(ctx, c.timeout)
		offset, err := c.query(qctx, s)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			err = c.apply(s, offset)
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		c.mu.Lock()
		c.errs = errs
		c.mu.Unlock()
		return true
	}
	c.mu.Lock()
	c.errs = errs
	state := c.state
	c.mu.Unlock()
	if ok, more := c.failLog.Allow(time.Now()); ok {
		c.log.Warn("clock: no time source answered", "state", state, "errors", errs, "not_logged_since", more)
	}
	return false
}

// query asks one source how far its time is ahead of the system clock.
func (c *Clock) query(ctx context.Context, s Source) (time.Duration, error) {
	switch s.Kind {
	case NTP:
		off, _, err := queryNTP(ctx, s.Addr, c.sys.Now)
		return off, err
	case HTTPS:
		return queryHTTPS(ctx, s.URL, c.httpsTLS, c.build, c.sys.Now)
	case Remote:
		if c.remoteURL == "" {
			return 0, errors.New("remote: the config has no remote block")
		}
		return queryHTTPS(ctx, c.remoteURL, c.remoteTLS, c.build, c.sys.Now)
	case RTC:
		dev := s.Device
		if dev == "" {
			dev = c.rtcDev
		}
		t, err := c.readRTC(dev)
		if err != nil {
			return 0, err
		}
		if t.Before(c.floor) {
			return 0, fmt.Errorf("rtc %s reads %s, before the %s time %s: its battery may be flat; it is set again when a network source sets the clock",
				dev, t.UTC().Format(time.RFC3339), c.floorFrom, c.floor.UTC().Format(time.RFC3339))
		}
		return t.Sub(c.sys.Now()), nil
	case System:
		if now := c.sys.Now(); now.Before(c.build) {
			return 0, fmt.Errorf("system: the system clock reads %s, before this build of osgate (%s): not set yet", now.UTC().Format(time.RFC3339), c.build.UTC().Format(time.RFC3339))
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s: unknown kind of time source", s)
}

// apply sets (or, without SetSystem, checks) the system clock by what
// source s answered and marks the clock synced.
func (c *Clock) apply(s Source, offset time.Duration) error {
	if s.Kind == NTP {
		if t := c.sys.Now().Add(offset); t.Before(c.build) {
			return fmt.Errorf("%s says %s, before this build of osgate (%s): ignored", s, t.UTC().Format(time.RFC3339), c.build.UTC().Format(time.RFC3339))
		}
	}
	if s.Kind != System {
		abs := offset.Abs()
		switch {
		case !c.set && abs > tolerance:
			c.mu.Lock()
			wasSynced := c.state == Synced
			c.state, c.source = Unsynced, "system"
			c.mu.Unlock()
			c.synced.Store(false)
			if wasSynced {
				c.report()
			}
			return fmt.Errorf("%s: the system clock is %s off (osgate leaves it alone: clock.set_system is false); fix the host's time synchronization (systemd-timesyncd, chrony)", s, offset.Round(time.Millisecond))
		case c.set && abs > stepThreshold:
			if err := c.sys.Step(c.sys.Now().Add(offset)); err != nil {
				return fmt.Errorf("%s answered, but the system clock cannot be set: %w (osgate needs CAP_SYS_TIME, or set clock.set_system false)", s, err)
			}
			c.log.Info("clock: set from a time source", "source", s.String(), "by", offset.Round(time.Millisecond).String())
		case c.set && offset != 0:
			if err := c.sys.Slew(offset); err != nil {
				return fmt.Errorf("%s answered, but the system clock cannot be corrected: %w (osgate needs CAP_SYS_TIME, or set clock.set_system false)", s, err)
			}
		}
	}
	c.mu.Lock()
	was := c.state
	c.state, c.source, c.last, c.offset = Synced, s.String(), c.sys.Now(), offset
	c.mu.Unlock()
	c.synced.Store(true)
	if was != Synced {
		c.log.Info("clock: synchronized; readings are of quality good from now on", "source", s.String(), "offset", offset.Round(time.Millisecond).String())
	}
	c.report()
	if c.set && (s.Kind == NTP || s.Kind == HTTPS || s.Kind == Remote) {
		c.keepRTC()
	}
	c.save()
	return nil
}

// keepRTC writes the time a network source set into the real-time clock,
// when there is one, so that it is right at the next boot.
func (c *Clock) keepRTC() {
	dev := c.rtcDev
	for _, s := range c.sources {
		if s.Kind == RTC && s.Device != "" {
			dev = s.Device
			break
		}
	}
	if _, err := os.Stat(dev); err != nil {
		return // no RTC on this board
	}
	if err := c.writeRTC(dev, c.sys.Now()); err != nil {
		c.warnOnce("rtc-write", "clock: the real-time clock cannot be set", "device", dev, "err", err)
	}
}

func (c *Clock) warnOnce(key, msg string, args ...any) {
	c.mu.Lock()
	seen := c.warned[key]
	c.warned[key] = true
	c.mu.Unlock()
	if !seen {
		c.log.Warn(msg, args...)
	}
}

// save writes the time and state to the state dir (SetSystem only).
func (c *Clock) save() {
	if c.statePath == "" {
		return
	}
	c.mu.Lock()
	s := saved{Time: c.Now().UTC(), BootID: c.bootID, State: c.state, Source: c.source, LastSync: c.last}
	c.mu.Unlock()
	if err := writeState(c.statePath, s); err != nil {
		c.warnOnce("save", "clock: the time cannot be saved to the state dir: after a reboot the clock is restored to an older time", "err", err)
	}
}

// report puts the state on /metrics.
func (c *Clock) report() {
	c.mu.Lock()
	state, source, last, offset := c.state, c.source, c.last, c.offset
	c.mu.Unlock()
	if state == Synced {
		metrics.ClockSynced.Set(1)
	} else {
		metrics.ClockSynced.Set(0)
	}
	metrics.ClockState.Reset()
	metrics.ClockState.WithLabelValues(string(state), source).Set(1)
	metrics.ClockOffset.Set(offset.Seconds())
	if !last.IsZero() {
		metrics.ClockLastSync.Set(float64(last.UnixNano()) / 1e9)
	}
}

// Status is the clock as gateway.status shows it.
type Status struct {
	// State is synced, restored or unsynced.
	State State `json:"state"`
	// Source: for synced, the source that answered last; for restored,
	// "saved" or "build"; for unsynced, "system".
	Source string `json:"source"`
	// SetSystem: osgate sets the system clock (clock.set_system).
	SetSystem bool   `json:"set_system"`
	Now       string `json:"now"`
	LastSync  string `json:"last_sync,omitempty"`
	// Offset is what the last answering source said minus the clock.
	Offset string `json:"offset,omitempty"`
	// Floor is the earliest time the clock was restored to, and whether
	// it is the build time or the saved time.
	Floor     string `json:"floor"`
	FloorFrom string `json:"floor_from"`
	// HoldUntil: readings wait on disk for a source until then.
	HoldUntil string   `json:"hold_until,omitempty"`
	Sources   []string `json:"sources"`
	// Errors are why each source asked in the last round did not answer.
	Errors []string `json:"errors,omitempty"`
}

// Status reports the clock's state.
func (c *Clock) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{
		State: c.state, Source: c.source, SetSystem: c.set,
		Now:   c.Now().UTC().Format(time.RFC3339Nano),
		Floor: c.floor.UTC().Format(time.RFC3339), FloorFrom: c.floorFrom,
		Sources: []string{}, Errors: append([]string(nil), c.errs...),
	}
	if !c.last.IsZero() {
		st.LastSync = c.last.UTC().Format(time.RFC3339)
	}
	if c.offset != 0 {
		st.Offset = c.offset.Round(time.Microsecond).String()
	}
	if c.state != Synced {
		if until := c.start.Add(c.hold); time.Now().Before(until) {
			st.HoldUntil = c.Now().Add(time.Until(until)).UTC().Format(time.RFC3339)
		}
	}
	for _, s := range c.sources {
		st.Sources = append(st.Sources, s.String())
	}
	return st
}

// OS is a clock that leaves the system clock alone and trusts it once it
// is past the build time: what a gateway made without the process's
// clock uses (tests, tools).
func OS(build time.Time) *Clock {
	sys, _ := ParseSource(string(System))
	return New(Options{Sources: []Source{sys}, BuildTime: build, Logger: slog.New(slog.DiscardHandler)})
}
