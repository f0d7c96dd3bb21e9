package zwave

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// unsolicited handles a frame no request waited for: a node's command or
// node information. It runs on the link's reader goroutine.
func (c *Connector) unsolicited(ctl *controller, f frame) {
	if f.Type != typeRequest {
		c.log.Debug("zwave: unexpected frame dropped", "frame", f.String())
		return
	}
	switch f.Func {
	case fnAppCommand, fnBridgeAppCommand:
		c.onAppCommand(ctl, f)
	case fnAppUpdate:
		if len(f.Data) > 0 && f.Data[0] == updateSmartStartHomeID {
			c.smartStartAnnounced(ctl, f)
		} else if len(f.Data) > 0 && f.Data[0] == updateNodeInfo {
			if _, err := ctl.recordNIF(f.Data); err != nil {
				c.log.Warn("zwave: malformed node information", "err", err)
			}
		}
	default:
		c.log.Debug("zwave: unexpected frame dropped", "frame", f.String())
	}
}

// parseAppCommand splits ApplicationCommandHandler (rx status, source,
// length, command) and its bridge form (rx status, destination, source,
// length, command) into source node and command.
func parseAppCommand(f frame) (byte, []byte, error) {
	d := f.Data
	off := 1
	if f.Func == fnBridgeAppCommand {
		off = 2
	}
	if len(d) < off+2 {
		return 0, nil, fmt.Errorf("zwave: application command of %d bytes", len(d))
	}
	node, n := d[off], int(d[off+1])
	if len(d) < off+2+n || n < 1 {
		return 0, nil, fmt.Errorf("zwave: application command from node %d: length %d, %d bytes present", node, n, len(d)-off-2)
	}
	return node, d[off+2 : off+2+n], nil
}

// valuesOf decodes the values of a received command; a command of an
// endpoint names its values with the suffix "_epN".
func valuesOf(m rxMsg) ([]value, error) {
	vs, err := decodeReport(m.cmd)
	if err != nil {
		return nil, err
	}
	if m.ep != 0 {
		for i := range vs {
			vs[i].Channel = fmt.Sprintf("%s_ep%d", vs[i].Channel, m.ep)
		}
	}
	return vs, nil
}

// report turns a report nobody waited for into readings for Listen; it
// returns false for a command that carries no value.
func (c *Connector) report(m rxMsg) bool {
	node := m.node
	c.alive(node)
	vs, err := valuesOf(m)
	if err != nil {
		if errors.Is(err, errNotReport) {
			c.log.Debug("zwave: command not decoded", "node", node, "err", err)
		} else {
			c.log.Warn("zwave: report not understood", "node", node, "err", err)
		}
		return false
	}
	c.exportValues(node, vs, m.at)
	return true
}

// exportValues hands a node's values to Listen.
func (c *Connector) exportValues(node byte, vs []value, at time.Time) {
	dev := deviceName(c.byNode, node)
	rs := make([]core.Reading, 0, len(vs))
	for _, v := range vs {
		if d, ok := c.byNode[node]; ok && len(d.channels) > 0 && !contains(d.channels, v.Channel) {
			continue // the device lists its channels: others are noise
		}
		c.seen(node, v.Channel, at)
		rs = append(rs, toReading(dev, v, at))
	}
	if len(rs) == 0 {
		return
	}
	select {
	case c.readings <- rs:
	default:
		c.stats.Dropped("zwave_queue", len(rs))
		c.log.Warn("zwave: report queue full (is Listen running?), report dropped", "device", dev, "readings", len(rs))
	}
}

func toReading(dev string, v value, at time.Time) core.Reading {
	if v.Err != nil {
		r := core.BadReading(dev, v.Channel, at, v.Err)
		r.Unit = v.Unit
		return r
	}
	return core.Reading{Device: dev, Channel: v.Channel, Value: v.Value, Unit: v.Unit, Time: at, Quality: core.Good}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Listen emits the readings of every report that arrives on its own until
// ctx ends or the link to the stick fails.
func (c *Connector) Listen(ctx context.Context, emit func(...core.Reading) error) error {
	ctl, err := c.session(ctx)
	if err != nil {
		return err
	}
	for {
		select {
		case rs := <-c.readings:
			if err := emit(rs...); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-ctl.link.done:
			return fmt.Errorf("zwave: listen: %w: %v", errLinkDown, ctl.link.err)
		}
	}
}
