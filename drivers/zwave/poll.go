package zwave

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// Poll reads the device's channels that have not reported on their own
// within the device's interval (the others went out through Listen). A
// channel without an answer is a Bad reading; a node that does not
// acknowledge fails the poll and is marked dead. A sleeping node is not
// asked now: its Gets wait for its next wake-up, and their answers go out
// through Listen.
func (c *Connector) Poll(ctx context.Context, dev *core.Device) ([]core.Reading, error) {
	d, ok := c.byName[dev.Name]
	if !ok {
		return nil, fmt.Errorf("zwave: device %q is not configured on connector %q", dev.Name, c.name)
	}
	if err := c.deadErr(d.node); err != nil {
		return nil, err
	}
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	sleeping := c.sleeping(ctl, d.node)
	var out []core.Reading
	asked := map[string]bool{} // Get commands already sent this poll
	for _, ch := range d.channels {
		if c.fresh(d.node, ch, dev.Interval) {
			continue
		}
		def, _ := lookupChannel(ch) // checked by New
		key := fmt.Sprintf("%d % X", def.ep, def.get)
		if asked[key] {
			continue
		}
		asked[key] = true
		if sleeping {
			c.queueGet(ctl, d.node, ch, def)
			continue
		}
		vs, err := c.get(ctx, ctl, d.node, ch, def)
		if errors.Is(err, errNoAck) {
			c.failed(d.node, err)
			return nil, err
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errLinkDown) {
				return nil, err
			}
			out = append(out, core.BadReading(d.name, ch, time.Now(), err))
			continue
		}
		now := time.Now()
		for _, v := range vs {
			if v.Channel == ch || contains(d.channels, v.Channel) {
				c.seen(d.node, v.Channel, now)
				out = append(out, toReading(d.name, v, now))
			}
		}
	}
	return out, nil
}

// get sends a channel's Get to a node and returns the values of the report
// that carries the channel.
func (c *Connector) get(ctx context.Context, ctl *controller, node byte, channel string, def channelDef) ([]value, error) {
	var got []value
	_, err := c.request(ctx, ctl, node, def.get, sendOpts{ep: def.ep}, func(m rxMsg) bool {
		vs, err := valuesOf(m)
		if err != nil {
			return false
		}
		for _, v := range vs {
			if v.Channel == channel {
				got = vs // read after the waiter fired
				return true
			}
		}
		return false
	}, c.set.ReportTimeout, fmt.Sprintf("report of %s from node %d", channel, node))
	if err != nil {
		return nil, err
	}
	return got, nil
}

// Write sets a switch ("switch": bool), a dimmer ("level": 0..99), the
// Basic value ("basic": 0..99) or a door lock ("lock": bool) of a node.
// The write is supervised when the node supports Supervision, so that the
// node's refusal is an error. A write to a sleeping node waits for its
// wake-up (within ctx; after that it stays queued).
func (c *Connector) Write(ctx context.Context, dev *core.Device, channel string, v any) error {
	d, ok := c.byName[dev.Name]
	if !ok {
		return fmt.Errorf("zwave: device %q is not configured on connector %q", dev.Name, c.name)
	}
	def, ok := lookupChannel(channel)
	if !ok || def.set == nil {
		return fmt.Errorf("zwave: write %s.%s: only %s can be written", dev.Name, channel, writableList)
	}
	cmd, err := def.set(v)
	if err != nil {
		return fmt.Errorf("zwave: write %s.%s: %w", dev.Name, channel, err)
	}
	ctl, err := c.session(ctx)
	if err != nil {
		return err
	}
	if c.sleeping(ctl, d.node) {
		err := c.queueAndWait(ctx, ctl, d.node, fmt.Sprintf("set %s", channel), func(ctx context.Context, ctl *controller) error {
			return c.setCmd(ctx, ctl, d.node, cmd, sendOpts{ep: def.ep})
		})
		if err != nil {
			return fmt.Errorf("zwave: write %s.%s: %w", dev.Name, channel, err)
		}
		c.forget(d.node, channel)
		return nil
	}
	if err := c.setCmd(ctx, ctl, d.node, cmd, sendOpts{ep: def.ep}); err != nil {
		if errors.Is(err, errNoAck) {
			c.failed(d.node, err)
		}
		return fmt.Errorf("zwave: write %s.%s: %w", dev.Name, channel, err)
	}
	// The next poll reads the value back instead of trusting an old report.
	c.forget(d.node, channel)
	return nil
}
