package appliance

import (
	"context"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/core"
	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/transform"
)

// deliver walks one batch of readings of one device down the data path:
// transforms (in place, no copies), the clock gate, encoding to one message,
// and the export sink, which blocks while its queue is full so back-pressure
// reaches the connector. Every reading that does not leave is counted.
func (c *connRun) deliver(ctx context.Context, device string, rs []core.Reading) error {
	now := c.g.clock.now()
	c.m.in.Add(float64(len(rs)))
	chains := c.chains[device]
	out := rs[:0]
	for i := range rs {
		r := rs[i]
		if r.Device == "" {
			r.Device = device
		}
		if r.Quality == core.Bad {
			c.m.chanErrs.Inc()
		}
		if ch := chains[r.Channel]; ch != nil {
			if !c.apply(ch, &r, now) {
				continue
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil
	}
	if !c.g.clock.set() {
		if !c.g.clock.hold(c, device, out) {
			c.m.dropClock.Add(float64(len(out)))
			c.log.Warn("clock not set and hold full: readings dropped", "device", device, "readings", len(out))
		}
		return nil
	}
	return c.publish(ctx, device, out)
}

// deliverByDevice delivers readings that arrived together, one batch (one
// message) per device, in the order the devices first appear; a channel
// that repeats (several samples in one MQTT message) starts another message
// rather than a JSON object with a duplicate key. rs is reordered in place
// and not kept.
func (c *connRun) deliverByDevice(ctx context.Context, rs []core.Reading) error {
	for len(rs) > 0 {
		dev := rs[0].Device
		n := 1
	next:
		for i := 1; i < len(rs); i++ {
			if rs[i].Device != dev {
				continue
			}
			for _, r := range rs[:n] {
				if r.Channel == rs[i].Channel {
					continue next
				}
			}
			// Rotate rs[i] into place so the readings left keep their order.
			r := rs[i]
			copy(rs[n+1:i+1], rs[n:i])
			rs[n] = r
			n++
		}
		if d := c.byName[dev]; d != nil {
			// A configured device reported: what it said judges its
			// state, as a poll would (the readings are exported anyway).
			d.record(judge(rs[:n], nil), time.Now())
		}
		if err := c.deliver(ctx, dev, rs[:n:n]); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// apply runs a channel's chain and counts (and logs) what it holds back.
func (c *connRun) apply(ch *transform.Chain, r *core.Reading, now time.Time) bool {
	dev, name := r.Device, r.Channel
	o := ch.Apply(r, now)
	switch o.Verdict {
	case transform.Keep:
		return true
	case transform.Suppressed:
		c.m.suppressed.Inc()
		return false
	}
	if o.Reason == transform.ReasonRange {
		c.m.dropRange.Inc()
	} else {
		c.m.dropTransform.Inc()
	}
	if c.g.dropLog.allow(dev + "\x00" + name + "\x00" + o.Reason) {
		c.log.Warn("reading dropped", "device", dev, "channel", name, "reason", o.Reason, "err", o.Err)
	}
	return false
}

// payloads recycles encode buffers: the sink copies what it is given.
var payloads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// publish encodes and exports one device's readings. A message over the
// managed broker's size limit, which the broker would drop, is dropped
// here, counted and logged.
func (c *connRun) publish(ctx context.Context, device string, rs []core.Reading) error {
	buf := payloads.Get().(*[]byte)
	payload := export.Encode((*buf)[:0], rs)
	if limit := c.g.maxPayload; limit > 0 && int64(len(payload)) > limit {
		*buf = payload
		payloads.Put(buf)
		c.m.dropTooLarge.Add(float64(len(rs)))
		if c.g.dropLog.allow(device + "\x00too_large") {
			c.log.Warn("readings dropped: the device's message is larger than the broker accepts (rpc.max_body)",
				"device", device, "readings", len(rs), "bytes", len(payload), "limit", limit)
		}
		return nil
	}
	err := c.g.sink.Publish(ctx, c.topic(device), payload)
	*buf = payload
	payloads.Put(buf)
	if err != nil {
		if noSpace(err) {
			c.g.disk.refused(err)
			return &diskFullError{readings: len(rs), err: err}
		}
		return err
	}
	c.g.disk.stored()
	c.m.out.Add(float64(len(rs)))
	return nil
}

// diskFullError is a publish refused for lack of space; it is
// core.ErrStorageFull to the connectors.
type diskFullError struct {
	readings int // how many were not stored
	err      error
}

func (e *diskFullError) Error() string {
	return core.ErrStorageFull.Error() + ": " + e.err.Error()
}

func (e *diskFullError) Is(target error) bool { return target == core.ErrStorageFull }
func (e *diskFullError) Unwrap() error        { return e.err }

// topic is the export topic of a device, computed once.
func (c *connRun) topic(device string) string {
	if t, ok := c.topics.Load(device); ok {
		return t.(string)
	}
	t := export.Topic(c.topicTmpl, c.gatewayID, device)
	c.topics.Store(device, t)
	return t
}

// rateLog lets a repeated event through once per period per key, so a
// noisy channel is logged without flooding the log.
type rateLog struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
}

func (l *rateLog) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.period {
		return false
	}
	l.last[key] = now
	return true
}
