package appliance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/backoff"
)

// Back-off after failed polls: the interval doubles per failure, from the
// device's interval up to maxBackoff (or the interval, if longer).
const maxBackoff = time.Minute

// listenerSettles is how long a restarted listener must run without
// failing to count as well again.
const listenerSettles = time.Minute

// pollGrace is how long a poll may overrun its timeout before the health
// model calls the scheduler stuck (a driver that ignores its ctx).
const pollGrace = 30 * time.Second

// devRun is one configured device of a running connector.
type devRun struct {
	conn *connRun
	dev  *core.Device
	vals *deviceValues
	// chains are the transforms of the device's channels, in the order of
	// dev.Channels (nil: none), as in connRun.chains.
	chains []*transform.Chain
	pollMu sync.Mutex // never two polls of one device at once
	// buf is the scheduler's readings slice, reused from one poll to the
	// next by a core.AppendPoller; only pollLoop uses it.
	buf   []core.Reading
	watch string // guarded by pollMu (watchName)

	mu sync.Mutex
	st devState
}

// pollLoop polls the device at its interval until ctx ends: a random first
// delay within the interval spreads devices out, and the polls then keep
// to that grid (each is due one interval after the previous one was due,
// not after it started, so wake-up latency does not add up into a drift
// that loses a poll now and then). A failed poll is retried when the next
// one is due; from the second failure in a row the device backs off
// exponentially with jitter and starts a new grid after the back-off.
//
// A poll that runs past the next one's time makes that one late: it runs
// at once, as long as it can still start before its own successor is due.
// A poll a whole interval or more overdue is missed: of the polls whose
// time passed meanwhile only the latest runs, at once, and the earlier
// ones are skipped (never bunched up: at most one poll catches up). Both
// are counted: osgate_polls_late_total for polls that started more than a
// tenth of the interval after they were due, osgate_polls_missed_total
// for polls skipped.
func (d *devRun) pollLoop(ctx context.Context, p core.Poller) {
	interval := d.dev.Interval
	due := time.Now().Add(backoff.Random(min(interval, 2*time.Second)))
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		if start.Sub(due) > interval/10 {
			d.conn.m.pollsLate.Inc()
		}
		err := d.pollAndDeliver(ctx, p)
		if ctx.Err() != nil {
			return
		}
		var missed int64
		if err != nil && d.failures() > 1 {
			due = time.Now().Add(d.backoff())
		} else {
			due, missed = nextDue(due, interval, time.Now())
		}
		if missed > 0 {
			d.conn.m.pollsMissed.Add(float64(missed))
		}
		timer.Reset(time.Until(due))
	}
}

// nextDue is when the poll after the one due at prev is due, given that
// the poll ended at now, and how many polls are missed in between. Polls
// are due on the grid prev + k·interval. If the next one's time has not
// passed it is due then; otherwise the latest time on the grid that has
// passed is due at once (less than an interval overdue, it starts before
// its successor is due) and the polls due before it, each a whole interval
// or more overdue, are missed.
func nextDue(prev time.Time, interval time.Duration, now time.Time) (time.Time, int64) {
	next := prev.Add(interval)
	if !now.After(next) {
		return next, 0
	}
	missed := int64(now.Sub(next) / interval)
	return next.Add(time.Duration(missed) * interval), missed
}

// backoff is the wait after the current run of failures.
func (d *devRun) backoff() time.Duration {
	d.mu.Lock()
	n := d.st.failures
	d.mu.Unlock()
	// ±10 % jitter so devices that failed together do not retry together.
	return backoff.Policy{First: d.dev.Interval, Max: max(maxBackoff, d.dev.Interval), Jitter: backoff.Tenth}.Delay(n)
}

// poll runs one poll under the device's timeout, exclusive with any other
// poll of the device (the scheduler's or an RPC device.read), and records
// the outcome in the device state, metrics and the health model. A poll
// in which every channel failed is a failed poll, like one that returned
// an error: it is returned as the error (the readings too, for
// device.read).
//
// buf, when not nil, is a slice of readings that an AppendPoller may fill
// (the scheduler's, reused from one poll to the next).
func (d *devRun) poll(ctx context.Context, p core.Poller, buf []core.Reading) ([]core.Reading, error) {
	c := d.conn
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	watch := d.watchName()
	c.g.health.Watch(watch, d.dev.Timeout+pollGrace)
	pctx, cancel := context.WithTimeout(ctx, d.dev.Timeout)
	start := time.Now()
	var rs []core.Reading
	var err error
	if ap, ok := p.(core.AppendPoller); ok && buf != nil {
		rs, err = ap.PollAppend(pctx, d.dev, buf[:0])
	} else {
		rs, err = p.Poll(pctx, d.dev)
	}
	cancel()
	c.g.health.Unwatch(watch)
	if ctx.Err() != nil && err != nil {
		return nil, err // stopping: not the device's fault
	}
	c.m.polls.Inc()
	o := judge(rs, err)
	d.mu.Lock()
	d.st.lastPoll = start
	repeated := d.st.lastErr != nil && o.err != nil && d.st.lastErr.Error() == o.err.Error()
	d.mu.Unlock()
	changed := d.record(o, time.Now())
	if o.failed {
		c.m.pollErrors.Inc()
		c.g.health.Failure(c.name, fmt.Errorf("device %s: %w", d.dev.Name, o.err))
		// A change of state is logged as such; a new error while offline
		// is worth a line too, the same one again is not.
		switch {
		case changed:
		case !repeated:
			c.log.Warn("poll failed", "device", d.dev.Name, "err", o.err, "failures", d.failures())
		default:
			c.log.Debug("poll failed", "device", d.dev.Name, "err", o.err, "failures", d.failures())
		}
		return rs, o.err
	}
	c.g.health.Success(c.name)
	return rs, nil
}

// watchName is the name of the device's polls in the health model's
// watch list, made once.
func (d *devRun) watchName() string {
	if d.watch == "" {
		d.watch = "poll " + d.conn.name + "/" + d.dev.Name
	}
	return d.watch
}

// record applies the outcome of a poll or a report to the device state,
// announces a change and reports whether there was one.
func (d *devRun) record(o outcome, now time.Time) bool {
	d.mu.Lock()
	ch, changed := d.st.apply(o, now)
	st := d.st
	d.mu.Unlock()
	d.conn.g.devices.update(d, st, ch, changed)
	return changed
}

// failures is the device's count of consecutive failed polls.
func (d *devRun) failures() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.failures
}

// pollAndDeliver polls and exports the readings of a poll that did not
// fail; a failed poll (an error, or every channel bad) exports nothing:
// the device's status message says it is offline.
func (d *devRun) pollAndDeliver(ctx context.Context, p core.Poller) error {
	if d.buf == nil {
		d.buf = []core.Reading{}
	}
	rs, err := d.poll(ctx, p, d.buf)
	if cap(rs) > 0 {
		// Nothing keeps rs once delivered (the clock hold, the
		// technician's values and the export take copies): the next poll
		// may fill it again.
		d.buf = rs[:0]
	}
	if err != nil {
		if ctx.Err() == nil {
			d.vals.failed(rs, d.conn.g.clock.Now())
		}
		return err
	}
	err = d.conn.deliver(ctx, d.dev.Name, rs)
	var full *diskFullError
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.As(err, &full):
		// Logged, rate-limited, by the disk watch; polling goes on so
		// readings flow again as soon as there is room.
		d.conn.m.dropDisk.Add(float64(full.readings))
	default:
		d.conn.log.Error("export refused readings", "device", d.dev.Name, "err", err)
	}
	return nil
}

// diskPause is the pause of a listener that stopped because the disk was
// full, should it fail that way again and again although the disk watch
// finds room (a quota, no free inodes).
var diskPause = backoff.Policy{First: 250 * time.Millisecond, Max: 4 * time.Second}

// listenerBackoff is the wait before a failed listener restarts.
var listenerBackoff = backoff.Policy{First: time.Second, Max: maxBackoff}

// listenLoop runs a Listener until ctx ends, restarting it with back-off
// whenever it returns. A listener that returned because the gateway's disk
// is full is no failure of its device: it restarts as soon as there is
// room again.
func (c *connRun) listenLoop(ctx context.Context, l core.Listener) {
	emit := func(rs ...core.Reading) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(rs) == 0 {
			return nil
		}
		c.g.health.Success(c.name)
		return c.deliverByDevice(ctx, rs)
	}
	failures, diskPauses := 0, 0
	for {
		start := time.Now()
		// A listener restarted after a failure that then runs for a
		// while without failing is well again, even if its devices
		// have had nothing to say yet.
		restarted := failures > 0
		settled := time.AfterFunc(listenerSettles, func() {
			if restarted {
				c.g.health.Success(c.name)
			}
		})
		err := l.Listen(ctx, emit)
		settled.Stop()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, core.ErrStorageFull) {
			c.m.listenerRestarts.Inc()
			if time.Since(start) > 10*diskPause.Max {
				diskPauses = 0
			}
			diskPauses++
			pause := time.After(diskPause.Delay(diskPauses))
			if c.g.dropLog.Allow("disk\x00"+c.name, time.Now()) {
				c.log.Warn("listener paused: the gateway's disk is full; it restarts when there is room", "err", err)
			}
			if c.g.disk.waitRoom(ctx) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-pause:
			}
			continue
		}
		if time.Since(start) > maxBackoff {
			failures = 0
		}
		failures++
		if err == nil {
			err = errors.New("listener returned")
		}
		c.m.listenerRestarts.Inc()
		c.g.health.Failure(c.name, err)
		wait := listenerBackoff.Delay(failures)
		c.log.Warn("listener stopped; restarting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
