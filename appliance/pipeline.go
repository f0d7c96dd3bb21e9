package appliance

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/prom"
)

// deliver walks one batch of readings of one device down the data path:
// the gateway's clock (stamps before the floor moved, quality uncertain
// until a time source answered), transforms (in place, no copies), the
// clock hold (on disk while the clock waits for a source), encoding to one
// message, and the export sink, which blocks while its queue is full so
// back-pressure reaches the connector. Every reading that does not leave
// is counted.
func (c *connRun) deliver(ctx context.Context, device string, rs []core.Reading) error {
	clk := c.g.clock
	now := clk.Now()
	synced := clk.Synced()
	c.m.in.Add(float64(len(rs)))
	chains := c.chains[device]
	// A configured device: its channels' transforms in config order, and
	// what the technician's pages show (configured devices only). A driver
	// that reports the configured channels in their order (the Modbus
	// driver does) finds each one's at its place; others by name.
	var (
		byPlace []*transform.Chain
		places  []*core.Channel
		vals    *deviceValues
		at      slot
	)
	if d := c.byName[device]; d != nil {
		byPlace, places, vals = d.chains, d.dev.Channels, d.vals
		at = trendSlot(now)
		vals.mu.Lock()
	}
	out := rs[:0]
	for i := range rs {
		r := rs[i]
		if r.Device == "" {
			r.Device = device
		}
		r.Time = clk.Stamp(r.Time)
		if !synced && r.Quality == core.Good {
			r.Quality = core.Uncertain
		}
		if r.Quality == core.Bad {
			c.m.chanErrs.Inc()
		}
		name := r.Channel
		var ch *transform.Chain
		if i < len(places) && i < len(byPlace) && places[i].Name == name {
			ch = byPlace[i]
		} else {
			ch = chains[name]
		}
		var o transform.Outcome
		if ch != nil {
			o = c.apply(ch, &r, now)
		}
		if vals != nil {
			vals.record(vals.channel(i, name), &r, o, now, at)
		}
		if o.Verdict != transform.Keep {
			continue
		}
		out = append(out, r)
	}
	if vals != nil {
		vals.mu.Unlock()
	}
	if len(out) == 0 {
		return nil
	}
	if h := c.g.hold; h != nil && (h.active() || clk.Hold()) {
		return c.holdBack(device, out)
	}
	return c.publish(ctx, device, out)
}

// holdBack appends one message to the clock hold.
func (c *connRun) holdBack(device string, rs []core.Reading) error {
	m := heldMessage{Topic: c.topic(device), Conn: c.name, Device: device, Mark: c.g.clock.Mark(),
		Readings: make([]heldReading, len(rs))}
	for i, r := range rs {
		m.Readings[i] = toHeld(r)
	}
	if err := c.g.hold.add(m); err != nil {
		if noSpace(err) {
			c.g.disk.refused(err)
			return &diskFullError{readings: len(rs), err: err}
		}
		return err
	}
	c.g.disk.stored()
	return nil
}

// deliverByDevice delivers readings that arrived together, one batch (one
// message) per device, in the order the devices first appear; a channel
// that repeats (several samples in one MQTT message) starts another message
// rather than a JSON object with a duplicate key. rs is reordered in place
// and not kept.
func (c *connRun) deliverByDevice(ctx context.Context, rs []core.Reading) error {
	return byDevice(rs, func(dev string, batch []core.Reading) error {
		if d := c.byName[dev]; d != nil {
			// A configured device reported: what it said judges its
			// state, as a poll would (the readings are exported anyway).
			d.record(judge(batch, nil), time.Now())
		}
		return c.deliver(ctx, dev, batch)
	})
}

// byDevice reorders rs in place into batches, one per device and round (a
// channel's second reading of a device is in the device's second batch),
// ordered by where each batch's first reading was, each batch keeping the
// order of rs; it calls fn for each batch in turn. Its cost is linear in
// len(rs): a message may carry thousands of channels.
func byDevice(rs []core.Reading, fn func(dev string, batch []core.Reading) error) error {
	if len(rs) <= smallBatch {
		return byDeviceSmall(rs, fn)
	}
	type devChan struct{ dev, ch string }
	type devRound struct {
		dev   string
		round int
	}
	seen := make(map[devChan]int, len(rs)) // readings of a channel so far
	group := make(map[devRound]int)        // batch index of a device's round
	of := make([]int32, len(rs))           // batch index of each reading
	var sizes []int                        // readings per batch
	for i := range rs {
		k := devChan{rs[i].Device, rs[i].Channel}
		round := seen[k]
		seen[k] = round + 1
		g, ok := group[devRound{k.dev, round}]
		if !ok {
			g = len(sizes)
			group[devRound{k.dev, round}] = g
			sizes = append(sizes, 0)
		}
		sizes[g]++
		of[i] = int32(g)
	}
	if len(sizes) == 1 {
		return fn(rs[0].Device, rs[:len(rs):len(rs)])
	}
	// A stable counting sort by batch.
	start := make([]int, len(sizes))
	for g := 1; g < len(sizes); g++ {
		start[g] = start[g-1] + sizes[g-1]
	}
	sorted := make([]core.Reading, len(rs))
	pos := slices.Clone(start)
	for i := range rs {
		sorted[pos[of[i]]] = rs[i]
		pos[of[i]]++
	}
	copy(rs, sorted)
	for g, st := range start {
		end := st + sizes[g]
		if err := fn(rs[st].Device, rs[st:end:end]); err != nil {
			return err
		}
	}
	return nil
}

// smallBatch is the size up to which byDeviceSmall, which allocates
// nothing, is cheaper than sorting.
const smallBatch = 32

// byDeviceSmall is byDevice by repeated scans: quadratic, for a few
// readings only.
func byDeviceSmall(rs []core.Reading, fn func(dev string, batch []core.Reading) error) error {
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
		if err := fn(dev, rs[:n:n]); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// apply runs a channel's chain and counts (and logs) what it holds back.
func (c *connRun) apply(ch *transform.Chain, r *core.Reading, now time.Time) transform.Outcome {
	dev, name := r.Device, r.Channel
	o := ch.Apply(r, now)
	switch o.Verdict {
	case transform.Keep:
		return o
	case transform.Suppressed:
		c.m.suppressed.Inc()
		return o
	}
	if o.Reason == transform.ReasonRange {
		c.m.dropRange.Inc()
	} else {
		c.m.dropTransform.Inc()
	}
	if c.g.dropLog.Allow(dev+"\x00"+name+"\x00"+o.Reason, time.Now()) {
		c.log.Warn("reading dropped", "device", dev, "channel", name, "reason", o.Reason, "err", o.Err)
	}
	return o
}

// payloads recycles encode buffers: the sink copies what it is given.
var payloads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// publish encodes and exports one device's readings.
func (c *connRun) publish(ctx context.Context, device string, rs []core.Reading) error {
	return c.g.send(ctx, c.topic(device), device, rs, sendMetrics{out: c.m.out, tooLarge: c.m.dropTooLarge}, c.log)
}

// sendMetrics are the counters of one connector that send moves.
type sendMetrics struct{ out, tooLarge *prom.Counter }

// send encodes one device's readings to one message and hands it to the
// export sink. A message over the managed broker's size limit, which the
// broker would drop, is dropped here, counted and logged.
func (g *Gateway) send(ctx context.Context, topic, device string, rs []core.Reading, m sendMetrics, log *slog.Logger) error {
	buf := payloads.Get().(*[]byte)
	payload := export.Encode((*buf)[:0], rs)
	if limit := g.maxPayload; limit > 0 && int64(len(payload)) > limit {
		*buf = payload
		payloads.Put(buf)
		m.tooLarge.Add(float64(len(rs)))
		if g.dropLog.Allow(device+"\x00too_large", time.Now()) {
			log.Warn("readings dropped: the device's message is larger than the broker accepts (rpc.max_body)",
				"device", device, "readings", len(rs), "bytes", len(payload), "limit", limit)
		}
		return nil
	}
	err := g.sink.Publish(ctx, topic, payload)
	*buf = payload
	payloads.Put(buf)
	if err != nil {
		if noSpace(err) {
			g.disk.refused(err)
			return &diskFullError{readings: len(rs), err: err}
		}
		return err
	}
	g.disk.stored()
	m.out.Add(float64(len(rs)))
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

// topic is the export topic of a device, kept in a bounded cache: devices
// that appear at runtime (an MQTT capture, an ingest path) are as many as
// the senders make up.
func (c *connRun) topic(device string) string {
	if t, ok := c.topics.Get(device); ok {
		return t
	}
	t := export.Topic(c.topicTmpl, c.gatewayID, device)
	c.topics.Add(device, t)
	return t
}

// maxDropLogKeys bounds the channels whose dropped readings the gateway's
// dropLog remembers; one forgotten is at worst logged again.
const maxDropLogKeys = 1024
