package appliance

import (
	"fmt"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/redact"
)

// maxReason bounds a state's reason (it travels in status messages).
const maxReason = 300

// devState is what the gateway knows of one configured device. Every view
// of a device (devices.list, the health model, /metrics, the retained
// status message) is made from it, at its changes.
type devState struct {
	state    health.DeviceState
	since    time.Time // when state began
	reason   string    // why the device entered state
	failures int       // consecutive failed polls (or reports)
	lastPoll time.Time // last poll started
	lastOK   time.Time // last poll or report that read some channel
	lastErr  error     // of the last failed poll or report, nil after a good one
}

// outcome is the verdict on one poll or report of a device.
type outcome struct {
	state  health.DeviceState
	reason string
	failed bool // counts as a failed poll: back-off, failures, health
	err    error
}

// judge classifies what a poll returned, or what a listener reported of
// one device: an error, or every channel bad, is a failed poll (offline);
// some channels bad is degraded; otherwise online. An empty successful
// poll (every channel reported on its own) is online.
func judge(rs []core.Reading, err error) outcome {
	if err != nil {
		return outcome{state: health.DeviceOffline, reason: clip(err.Error()), failed: true, err: err}
	}
	bad, first := 0, -1
	for i := range rs {
		if rs[i].Quality == core.Bad {
			bad++
			if first < 0 {
				first = i
			}
		}
	}
	switch {
	case bad == 0:
		return outcome{state: health.DeviceOnline}
	case bad == len(rs):
		err := &allBadError{n: bad, channel: rs[first].Channel, err: rs[first].Err}
		return outcome{state: health.DeviceOffline, reason: clip(err.Error()), failed: true, err: err}
	}
	return outcome{state: health.DeviceDegraded,
		reason: clip(fmt.Sprintf("%d of %d channels failed; %s", bad, len(rs), channelErr(rs[first])))}
}

// allBadError is a poll in which no channel could be read: the device
// does not answer (an RS-485 slave that is absent answers nothing, and the
// driver reports each channel bad).
type allBadError struct {
	n       int
	channel string
	err     error
}

func (e *allBadError) Error() string {
	if e.n == 1 {
		return "its one channel failed; " + channelErr(core.Reading{Channel: e.channel, Err: e.err})
	}
	return fmt.Sprintf("every channel failed (%d); %s", e.n, channelErr(core.Reading{Channel: e.channel, Err: e.err}))
}

func (e *allBadError) Unwrap() error { return e.err }

func channelErr(r core.Reading) string {
	if r.Err == nil {
		return r.Channel + ": bad"
	}
	return r.Channel + ": " + r.Err.Error()
}

func clip(s string) string { return redact.Clip(s, maxReason) }

// change is a device's state after an event, if the event changed it.
type change struct {
	from, to health.DeviceState
	after    int // failures before a recovery
}

// apply records an outcome at now and reports whether the state changed.
// The reason is that of the state's start: a device that stays offline
// keeps the reason it went offline with (lastErr has the latest error).
func (s *devState) apply(o outcome, now time.Time) (change, bool) {
	prevFailures := s.failures
	if o.failed {
		s.failures++
		s.lastErr = o.err
	} else {
		s.failures = 0
		s.lastErr = nil
		s.lastOK = now
	}
	if o.state == s.state {
		return change{}, false
	}
	c := change{from: s.state, to: o.state, after: prevFailures}
	s.state, s.since, s.reason = o.state, now, o.reason
	return c, true
}

// silent marks a device that reports on its own offline when it has been
// silent past its interval: since its last report, or since its connector
// started. It reports whether the state changed.
func (s *devState) silent(interval time.Duration, started, now time.Time) (change, bool) {
	if s.state == health.DeviceOffline || s.state == health.DeviceDisabled {
		return change{}, false
	}
	overdue := maxTime(s.lastOK, started).Add(interval)
	if !now.After(overdue) {
		return change{}, false
	}
	c := change{from: s.state, to: health.DeviceOffline}
	s.state, s.since = health.DeviceOffline, overdue
	if s.lastOK.IsZero() {
		s.reason = fmt.Sprintf("no report since the connector started (interval %s)", interval)
	} else {
		s.reason = fmt.Sprintf("no report since %s (interval %s)", s.lastOK.UTC().Format(time.RFC3339), interval)
	}
	return c, true
}

// silentAt is when silent will find the device silent if it does not
// report before; false when it cannot (it is offline or disabled).
func (s *devState) silentAt(interval time.Duration, started time.Time) (time.Time, bool) {
	if s.state == health.DeviceOffline || s.state == health.DeviceDisabled {
		return time.Time{}, false
	}
	return maxTime(s.lastOK, started).Add(interval + time.Millisecond), true // past it: silent's "after"
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
