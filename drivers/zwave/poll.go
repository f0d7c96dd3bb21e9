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
// acknowledge fails the poll and is marked dead.
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
	var out []core.Reading
	asked := map[string]bool{} // Get commands already sent this poll
	for _, ch := range d.channels {
		if c.fresh(d.node, ch, dev.Interval) {
			continue
		}
		def, _ := lookupChannel(ch) // checked by New
		key := string(def.get)
		if asked[key] {
			continue
		}
		asked[key] = true
		vs, err := c.get(ctx, ctl, d.node, ch, def.get)
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

// get sends a Get to a node and waits for the report that carries channel.
func (c *Connector) get(ctx context.Context, ctl *controller, node byte, channel string, get []byte) ([]value, error) {
	var got []value
	w := ctl.expect(1, func(f frame) bool {
		if f.Type != typeRequest || (f.Func != fnAppCommand && f.Func != fnBridgeAppCommand) {
			return false
		}
		src, cmd, err := parseAppCommand(f)
		if err != nil || src != node {
			return false
		}
		vs, err := decodeReport(cmd)
		if err != nil {
			return false
		}
		for _, v := range vs {
			if v.Channel == channel {
				got = vs // read by get after the frame is received
				return true
			}
		}
		return false
	})
	defer ctl.cancel(w)
	if err := ctl.sendData(ctx, node, get); err != nil {
		return nil, err
	}
	c.alive(node)
	if _, err := ctl.wait(ctx, w, c.set.ReportTimeout, fmt.Sprintf("report of %s from node %d", channel, node)); err != nil {
		return nil, err
	}
	return got, nil
}

// Write sets a switch ("switch": bool), a dimmer ("level": 0..99) or the
// Basic value ("basic": 0..99) of a node.
func (c *Connector) Write(ctx context.Context, dev *core.Device, channel string, v any) error {
	d, ok := c.byName[dev.Name]
	if !ok {
		return fmt.Errorf("zwave: device %q is not configured on connector %q", dev.Name, c.name)
	}
	def, ok := lookupChannel(channel)
	if !ok || def.set == nil {
		return fmt.Errorf("zwave: write %s.%s: only switch, level and basic can be written", dev.Name, channel)
	}
	cmd, err := def.set(v)
	if err != nil {
		return fmt.Errorf("zwave: write %s.%s: %w", dev.Name, channel, err)
	}
	ctl, err := c.session(ctx)
	if err != nil {
		return err
	}
	if err := ctl.sendData(ctx, d.node, cmd); err != nil {
		if errors.Is(err, errNoAck) {
			c.failed(d.node, err)
		}
		return fmt.Errorf("zwave: write %s.%s: %w", dev.Name, channel, err)
	}
	c.alive(d.node)
	// The next poll reads the value back instead of trusting an old report.
	c.forget(d.node, channel)
	return nil
}
