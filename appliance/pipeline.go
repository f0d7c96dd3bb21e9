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

// publish encodes and exports one device's readings.
func (c *connRun) publish(ctx context.Context, device string, rs []core.Reading) error {
	payload := export.Encode(make([]byte, 0, 64+48*len(rs)), rs)
	if err := c.g.sink.Publish(ctx, c.topic(device), payload); err != nil {
		return err
	}
	c.m.out.Add(float64(len(rs)))
	return nil
}

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
