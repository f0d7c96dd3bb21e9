package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/topic"
)

// bootID names this process in the gateway's status documents: its online
// document and its will carry the same one (docs/status.md).
var bootID = func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// silenceCheck is the least time between two looks at what changes with
// time alone (devices that report on their own falling silent past their
// interval, the health model's judgement), so that a busy gateway does not
// look all the time; an idle one looks only when something is due.
const silenceCheck = time.Second

// stopAnnounce bounds how long a stopping gateway waits to spool its
// "offline" document.
const stopAnnounce = 5 * time.Second

// deviceBook keeps every view of the configured devices in step: at each
// change of a device's state it updates the health model and /metrics,
// logs it, and queues the device's retained status message. It also
// publishes the gateway's own status document (online at start and after
// the export connection came back, offline at a clean stop), holds the
// devices of disabled connectors, and marks silent devices of listeners
// offline. Status messages go through the export sink, so they survive
// outages like readings and keep their order with them.
type deviceBook struct {
	g       *Gateway
	log     *slog.Logger
	gateway string // id

	mu       sync.Mutex
	pending  map[string][]byte // device → status payload to publish; nil clears it
	announce bool              // the gateway's online document is to be published
	resend   bool              // every current state is to be published again
	// published is the key (docKey) of the gateway document published
	// last: a document whose key differs is published at the next check.
	published string
	disabled  map[string]*disabledDevice
	wake      chan struct{} // capacity 1
	// bridgeUp and bridgeSince: the bridge's last notification ("1" or
	// "0") and when it came; bridgeKnown once one came.
	bridgeKnown, bridgeUp bool
	bridgeSince           time.Time
	// recheck: the gateway's document may have changed (statusChanged);
	// run compares it with the one published.
	recheck bool
}

// disabledDevice is a device of a disabled connector, for devices.list.
type disabledDevice struct {
	connector, typ, reason string
	dev                    config.Device
	since                  time.Time
}

func newDeviceBook(g *Gateway) *deviceBook {
	return &deviceBook{
		g: g, log: g.log, gateway: g.cfg.Gateway.ID,
		pending:  map[string][]byte{},
		announce: true,
		disabled: map[string]*disabledDevice{},
		wake:     make(chan struct{}, 1),
	}
}

// add starts tracking a running connector's device in its current state.
func (b *deviceBook) add(d *devRun) {
	d.mu.Lock()
	st := d.st
	d.mu.Unlock()
	b.show(d.conn.name, d.dev.Name, st)
}

// remove stops tracking a stopped connector's devices.
func (b *deviceBook) remove(c *connRun) {
	for _, d := range c.devices {
		b.g.health.RemoveDevice(d.dev.Name)
	}
	metrics.DeviceState.DeletePartialMatch(map[string]string{"connector": c.name})
	metrics.DeviceStateSince.DeletePartialMatch(map[string]string{"connector": c.name})
	metrics.DeviceFailures.DeletePartialMatch(map[string]string{"connector": c.name})
}

// show puts a device's state into the health model and /metrics.
func (b *deviceBook) show(connector, device string, st devState) {
	b.g.health.SetDevice(device, health.Device{Connector: connector, State: st.state, Since: st.since, Reason: st.reason})
	for _, s := range health.DeviceStates {
		v := 0.0
		if s == st.state {
			v = 1
		}
		metrics.DeviceState.WithLabelValues(connector, device, string(s)).Set(v)
	}
	metrics.DeviceStateSince.WithLabelValues(connector, device).Set(float64(st.since.UnixMilli()) / 1000)
	metrics.DeviceFailures.WithLabelValues(connector, device).Set(float64(st.failures))
}

// update takes a device's state after an event; when the state changed it
// is shown, logged and queued for export.
func (b *deviceBook) update(d *devRun, st devState, ch change, changed bool) {
	c := d.conn
	if !changed {
		metrics.DeviceFailures.WithLabelValues(c.name, d.dev.Name).Set(float64(st.failures))
		return
	}
	b.show(c.name, d.dev.Name, st)
	switch {
	case st.state == health.DeviceOffline:
		c.log.Warn("device offline", "device", d.dev.Name, "reason", st.reason, "was", ch.from)
	case st.state == health.DeviceDegraded:
		c.log.Warn("device degraded", "device", d.dev.Name, "reason", st.reason, "was", ch.from)
	case ch.from == health.DeviceUnknown:
		c.log.Debug("device online", "device", d.dev.Name)
	default:
		c.log.Info("device online again", "device", d.dev.Name, "was", ch.from, "after_failures", ch.after)
	}
	b.queue(d.dev.Name, st.state, st.since, st.reason)
}

// queue makes a device's status message the next to publish for it.
func (b *deviceBook) queue(device string, state health.DeviceState, since time.Time, reason string) {
	if state == health.DeviceUnknown {
		return // nothing to say yet: the last word stays
	}
	p, _ := json.Marshal(export.DeviceStatus{State: string(state), Since: since.UTC().Format(stampLayout), Reason: reason})
	b.mu.Lock()
	b.pending[device] = p
	b.announce = true // the document's device counts changed
	b.mu.Unlock()
	b.poke()
}

// clear queues the removal of a device's retained status message (the
// device left the configuration).
func (b *deviceBook) clear(device string) {
	b.mu.Lock()
	b.pending[device] = nil
	b.announce = true
	b.mu.Unlock()
	b.poke()
}

// reconnected is the export sink's OnReconnect: the broker may have
// published the will meanwhile, so say "online" again.
func (b *deviceBook) reconnected() {
	b.mu.Lock()
	b.announce = true
	b.mu.Unlock()
	b.poke()
}

// bridge takes the bridge's notification (status/{gateway}/bridge, "1"
// or "0"): each time the bridge is up again, every current state is
// published again, since the cloud got none of the changes meanwhile (the
// bridge carries status at QoS 0: nothing waits in its queue to land late
// and stale).
func (b *deviceBook) bridge(payload []byte) {
	up := string(payload) == "1"
	b.mu.Lock()
	if !b.bridgeKnown || b.bridgeUp != up {
		b.bridgeKnown, b.bridgeUp, b.bridgeSince = true, up, time.Now()
	}
	if up {
		b.resend = true // by run: this is the MQTT client's goroutine
	}
	b.mu.Unlock()
	if up {
		b.poke()
	}
}

// bridgeState is the bridge's last notification: whether one came, up or
// down, and since when.
func (b *deviceBook) bridgeState() (known, up bool, since time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bridgeKnown, b.bridgeUp, b.bridgeSince
}

// republish queues the gateway's document and every device's current
// state.
func (b *deviceBook) republish() {
	b.g.mu.Lock()
	var devs []*devRun
	for _, name := range b.g.order {
		devs = append(devs, b.g.conns[name].devices...)
	}
	b.g.mu.Unlock()
	for _, d := range devs {
		d.mu.Lock()
		st := d.st
		d.mu.Unlock()
		b.queue(d.dev.Name, st.state, st.since, st.reason)
	}
	for _, dd := range b.disabledDevices() {
		b.queue(dd.dev.Name, health.DeviceDisabled, dd.since, dd.reason)
	}
	b.mu.Lock()
	b.announce = true
	b.mu.Unlock()
	b.poke()
}

func (b *deviceBook) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// stampLayout is the status documents' time format (RFC 3339, UTC, ms).
const stampLayout = "2006-01-02T15:04:05.000Z"

// run publishes queued status messages and checks listeners' devices for
// silence until ctx ends. It wakes up for what it is told (queued
// messages, statusChanged, the health model's Changes) and for what falls
// due with time (a device's silence, the health model's Next, the
// heartbeat), and sleeps otherwise.
func (b *deviceBook) run(ctx context.Context) {
	look := time.NewTimer(0) // the first look: at once
	defer look.Stop()
	var due, looked time.Time // of the look timer (zero: stopped); the last look
	arm := func(at time.Time) {
		if at.IsZero() || !due.IsZero() && !at.Before(due) {
			return
		}
		due = at
		look.Reset(time.Until(at)) // a fire not yet received is dropped (Go 1.23 timers)
	}
	due = time.Now()
	b.g.mu.Lock()
	every := b.g.cfg.Gateway.StatusInterval
	b.g.mu.Unlock()
	if every <= 0 {
		every = defaultStatusInterval
	}
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	for {
		b.mu.Lock()
		resend := b.resend
		b.resend = false
		b.mu.Unlock()
		if resend {
			b.log.Debug("bridge up: publishing every status again")
			b.republish()
		}
		if err := b.flush(ctx); err != nil {
			if ctx.Err() == nil {
				b.log.Error("export refused a status message", "err", err)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
			b.mu.Lock()
			recheck := b.recheck
			b.recheck = false
			b.mu.Unlock()
			if recheck {
				b.checkChange()
			}
		case <-b.g.health.Changes():
			arm(maxTime(time.Now(), looked.Add(silenceCheck)))
		case <-look.C:
			due = time.Time{}
			looked = time.Now()
			next := b.checkSilence(looked)
			if at := b.checkChange(); !at.IsZero() && (next.IsZero() || at.Before(next)) {
				next = at
			}
			if !next.IsZero() {
				arm(maxTime(next, looked.Add(silenceCheck)))
			}
		case <-heartbeat.C:
			b.mu.Lock()
			b.announce = true
			b.mu.Unlock()
		}
	}
}

// defaultStatusInterval is the heartbeat of a gateway whose configuration
// did not go through config.Parse (tests).
const defaultStatusInterval = 5 * time.Minute

// statusChanged has the gateway's document published now if it changed:
// what goes into it besides the health model (the configuration, its
// trial, the update agent) says so when it changes. It does not block.
func (g *Gateway) statusChanged() {
	if g.devices != nil {
		g.devices.mu.Lock()
		g.devices.recheck = true
		g.devices.mu.Unlock()
		g.devices.poke()
	}
}

// checkChange queues the gateway's document when something in it changed
// since it was published: health, configuration, update state (docKey).
// It returns when the health model's judgement may next change with time
// alone (zero: not by time alone).
func (b *deviceBook) checkChange() time.Time {
	d, next := b.gatewayDocNext("online", time.Now())
	key := docKey(d)
	b.mu.Lock()
	if key != b.published {
		b.announce = true
	}
	b.mu.Unlock()
	return next
}

// flush publishes what is queued: the gateway's document first, then the
// devices'.
func (b *deviceBook) flush(ctx context.Context) error {
	b.mu.Lock()
	announce, pending := b.announce, b.pending
	b.announce, b.pending = false, map[string][]byte{}
	b.mu.Unlock()
	if announce {
		d := b.gatewayDoc("online", time.Now())
		p, _ := json.Marshal(d)
		if err := b.g.sink.PublishRetained(ctx, topic.GatewayStatus(b.gateway), p); err != nil {
			b.requeue(true, pending)
			return err
		}
		b.mu.Lock()
		b.published = docKey(d)
		b.mu.Unlock()
	}
	for dev, p := range pending {
		if err := b.g.sink.PublishRetained(ctx, topic.DeviceStatus(b.gateway, dev), p); err != nil {
			b.requeue(false, pending)
			return err
		}
		delete(pending, dev)
	}
	return nil
}

// requeue puts back what a flush could not publish, unless newer.
func (b *deviceBook) requeue(announce bool, pending map[string][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.announce = b.announce || announce
	for dev, p := range pending {
		if _, newer := b.pending[dev]; !newer {
			b.pending[dev] = p
		}
	}
}

// gatewayDoc is the gateway's document now, in state ("online", or
// "offline" at a clean stop).
func (b *deviceBook) gatewayDoc(state string, now time.Time) export.GatewayStatus {
	d, _ := b.gatewayDocNext(state, now)
	return d
}

// gatewayDocNext is gatewayDoc, and when its health part may next change
// with time alone (health.Report.Next).
func (b *deviceBook) gatewayDocNext(state string, now time.Time) (export.GatewayStatus, time.Time) {
	g := b.g
	r := g.health.Report()
	counts := map[string]int{}
	for s, n := range r.Devices {
		counts[string(s)] = n
	}
	g.mu.Lock()
	gw := g.cfg.Gateway
	g.mu.Unlock()
	d := export.GatewayStatus{ID: b.gateway, State: state, Version: Version, Boot: bootID,
		At: now.UTC().Format(stampLayout), Uptime: int64(now.Sub(g.started) / time.Second),
		Health: &export.HealthStatus{Status: string(r.Status)}, Devices: counts, Labels: gw.Labels}
	if state == "online" {
		d.Since = g.started.UTC().Format(stampLayout)
	}
	for i, why := range r.Reasons {
		if i == export.MaxReasons {
			d.Health.Reasons = append(d.Health.Reasons, fmt.Sprintf("and %d more", len(r.Reasons)-i))
			break
		}
		d.Health.Reasons = append(d.Health.Reasons, redact.Clip(why, maxReasonLen))
	}
	if g.configStatus != nil {
		st := g.configStatus()
		c := &export.ConfigStatus{Version: short(st.Version), Origin: string(st.Source)}
		if st.LastOutcome == "refused" || st.LastOutcome == "error" {
			c.Error = redact.Clip(st.LastError, maxReasonLen)
		}
		for _, bv := range st.BadVersions[max(0, len(st.BadVersions)-maxBadVersions):] {
			c.Bad = append(c.Bad, short(bv.Version))
		}
		if n := len(st.BadVersions); n > 0 {
			bv := st.BadVersions[n-1] // oldest first
			c.Rejected = &export.RejectedConfig{Version: short(bv.Version), Reason: redact.Clip(bv.Reason, maxReasonLen)}
			if !bv.At.IsZero() {
				c.Rejected.At = bv.At.UTC().Format(stampLayout)
			}
		}
		c.Trial = g.configTrial != nil && g.configTrial()
		d.Config = c
	}
	if g.otaStatus != nil {
		d.OTA = g.otaStatus()
	}
	if g.export != nil {
		n := g.export.Spooled()
		d.Spool = &n
	}
	return d, r.Next
}

// Bounds of the status document: reasons are clipped, and only the last
// rolled-back configurations are named.
const (
	maxReasonLen   = 240
	maxBadVersions = 3
)

// digits matches the numbers in health reasons ("5 messages queued",
// "for 2m3s"), which change without the gateway's state changing.
var digits = regexp.MustCompile(`[0-9]+`)

// docKey is what of a document counts as a change worth publishing at
// once: everything but the time, the uptime, the spool's depth, the
// update's progress and the numbers in health reasons (those go out with
// the next change or heartbeat).
func docKey(d export.GatewayStatus) string {
	d.At, d.Uptime, d.Spool = "", 0, nil
	if d.Health != nil {
		h := *d.Health
		h.Reasons = slices.Clone(h.Reasons)
		for i, r := range h.Reasons {
			h.Reasons[i] = digits.ReplaceAllString(r, "#")
		}
		d.Health = &h
	}
	if d.OTA != nil {
		o := *d.OTA
		o.Status = ""
		d.OTA = &o
	}
	k, _ := json.Marshal(d)
	return string(k)
}

// will is the gateway's document as the local broker publishes it when the
// export connection drops without a clean disconnect.
func (b *deviceBook) will() *export.Will {
	b.g.mu.Lock()
	labels := b.g.cfg.Gateway.Labels
	b.g.mu.Unlock()
	p, _ := json.Marshal(export.GatewayStatus{ID: b.gateway, State: "offline", Version: Version, Boot: bootID, Labels: labels,
		Reason: "the gateway lost its connection to the local broker: killed, crashed or hung"})
	return &export.Will{Topic: topic.GatewayStatus(b.gateway), Payload: p}
}

// stop publishes what is still queued and, with a reason, the gateway's
// "offline" document, before the sink stops.
func (b *deviceBook) stop(reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), stopAnnounce)
	defer cancel()
	b.mu.Lock()
	b.announce = false
	b.mu.Unlock()
	if err := b.flush(ctx); err != nil {
		b.log.Warn("status messages not spooled at stop", "err", err)
		return
	}
	if reason == "" {
		return
	}
	now := time.Now()
	d := b.gatewayDoc("offline", now)
	d.Since, d.Reason = now.UTC().Format(stampLayout), reason
	d.Health, d.Devices, d.Spool, d.Uptime = nil, nil, nil, 0
	p, _ := json.Marshal(d)
	if err := b.g.sink.PublishRetained(ctx, topic.GatewayStatus(b.gateway), p); err != nil {
		b.log.Warn("offline status not spooled at stop", "err", err)
	}
}

// checkSilence marks offline the devices of listening connectors (that
// are not polled) that have been silent past their interval, and returns
// when the next one will be, if it stays silent (zero: none can).
func (b *deviceBook) checkSilence(now time.Time) (next time.Time) {
	b.g.mu.Lock()
	var conns []*connRun
	for _, name := range b.g.order {
		c := b.g.conns[name]
		if _, polled := c.conn.(core.Poller); !polled && c.cancel != nil {
			conns = append(conns, c)
		}
	}
	b.g.mu.Unlock()
	for _, c := range conns {
		for _, d := range c.devices {
			d.mu.Lock()
			ch, changed := d.st.silent(d.dev.Interval, c.started, now)
			st := d.st
			at, can := d.st.silentAt(d.dev.Interval, c.started)
			d.mu.Unlock()
			if changed {
				b.update(d, st, ch, true)
			}
			if can && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return next
}

// setDisabled makes the devices of cfg's disabled connectors "disabled",
// and forgets those no longer disabled (their connector shows them).
func (b *deviceBook) setDisabled(cfg *config.Config) {
	now := time.Now()
	seen := map[string]bool{}
	for _, cc := range cfg.Connectors {
		if cc.Enabled == nil || *cc.Enabled {
			continue
		}
		for _, dev := range cc.Devices {
			seen[dev.Name] = true
			b.mu.Lock()
			old := b.disabled[dev.Name]
			dd := &disabledDevice{connector: cc.Name, typ: cc.Type, dev: dev, since: now,
				reason: "connector " + cc.Name + " is disabled in the configuration"}
			if old != nil && old.connector == cc.Name {
				dd.since = old.since
			}
			b.disabled[dev.Name] = dd
			b.mu.Unlock()
			if old == nil || old.connector != cc.Name {
				b.show(cc.Name, dev.Name, devState{state: health.DeviceDisabled, since: dd.since, reason: dd.reason})
				b.queue(dev.Name, health.DeviceDisabled, dd.since, dd.reason)
			}
		}
	}
	b.mu.Lock()
	var gone []*disabledDevice
	for name, dd := range b.disabled {
		if !seen[name] {
			gone = append(gone, dd)
			delete(b.disabled, name)
		}
	}
	b.mu.Unlock()
	for _, dd := range gone {
		b.g.health.RemoveDevice(dd.dev.Name)
		labels := map[string]string{"connector": dd.connector, "device": dd.dev.Name}
		metrics.DeviceState.DeletePartialMatch(labels)
		metrics.DeviceStateSince.DeletePartialMatch(labels)
		metrics.DeviceFailures.DeletePartialMatch(labels)
	}
}

// disabledDevices lists the devices of disabled connectors, by name.
func (b *deviceBook) disabledDevices() []*disabledDevice {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*disabledDevice, 0, len(b.disabled))
	for _, dd := range b.disabled {
		out = append(out, dd)
	}
	slices.SortFunc(out, func(a, b *disabledDevice) int { return strings.Compare(a.dev.Name, b.dev.Name) })
	return out
}
