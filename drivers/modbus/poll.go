package modbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	gridx "github.com/grid-x/modbus"

	"github.com/osgate/osgate/drivers/core"
)

// Poll reads every channel of dev: one Reading per channel, Bad (with Err)
// for a channel whose read failed with an exception, a timeout, a CRC or
// decode error. It returns an error only when the transport cannot be
// reached at all (connection refused, serial port missing).
func (c *connector) Poll(ctx context.Context, dev *core.Device) ([]core.Reading, error) {
	return c.PollAppend(ctx, dev, nil)
}

// PollAppend is Poll into buf (core.AppendPoller).
func (c *connector) PollAppend(ctx context.Context, dev *core.Device, buf []core.Reading) ([]core.Reading, error) {
	d, err := c.device(dev.Name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Every channel is in one of the device's blocks, so every reading of
	// out is written by fill or fail before it is returned.
	out := slices.Grow(buf[:0], len(d.chans))[:len(d.chans)]
	p := &poll{c: c, d: d, ctx: ctx, now: time.Now(), out: out}
	for _, b := range d.blocks {
		if err := p.block(b); err != nil {
			return nil, err
		}
	}
	// Bad readings are counted in osgate_channel_errors_total by the core's
	// pipeline, which sees every connector's readings; not again here.
	return p.out, nil
}

// poll is the state of one Poll of one device.
type poll struct {
	c   *connector
	d   *device
	ctx context.Context
	now time.Time
	out []core.Reading
	// skip is set once the unit failed to answer at all: the rest of this
	// poll's reads are not sent, so a dead unit costs one timeout per poll.
	skip error
}

// block reads one planned read, or the pieces it was split into.
func (p *poll) block(b *block) error {
	reqs := b.leaves
	probe := reqs == nil || p.now.Sub(b.splitAt) >= p.c.set.Reprobe
	if probe {
		reqs = []request{b.whole}
	}
	var leaves []request
	for _, r := range reqs {
		got, err := p.read(r)
		if err != nil {
			return err
		}
		leaves = append(leaves, got...)
	}
	switch {
	case len(leaves) == 1 && len(leaves[0].chans) == len(b.whole.chans):
		b.leaves = nil
	case probe:
		b.leaves, b.splitAt = leaves, p.now
		p.d.log.Info("modbus: read answered with an exception; split it to find the failing channels",
			"read", b.whole.String(), "now_reads", len(leaves), "retry_merged_after", p.c.set.Reprobe)
	default:
		b.leaves = leaves
	}
	return nil
}

// read sends r; on an exception it bisects r until the failing channels
// are alone, and returns the reads it ended with.
func (p *poll) read(r request) ([]request, error) {
	if p.skip != nil {
		p.fail(r, fmt.Errorf("not asked after an earlier read of this unit failed: %w", p.skip))
		return []request{r}, nil
	}
	data, err := p.c.readOnce(p.ctx, p.d.unit, r)
	if err == nil {
		p.fill(r, data, time.Now())
		return []request{r}, nil
	}
	var down *errLinkDown
	if errors.As(err, &down) {
		return nil, fmt.Errorf("modbus: device %q (unit %d): %w", p.d.name, p.d.unit, err)
	}
	err = fmt.Errorf("modbus: read %s of unit %d: %w", r, p.d.unit, err)
	var ex *gridx.Error
	isEx := errors.As(err, &ex)
	if isEx && splittable(ex.ExceptionCode) && len(r.chans) > 1 {
		a, b := halve(r, p.d.chans)
		la, err := p.read(a)
		if err != nil {
			return nil, err
		}
		lb, err := p.read(b)
		if err != nil {
			return nil, err
		}
		return append(la, lb...), nil
	}
	if errors.Is(err, errTimeout) || p.ctx.Err() != nil || isEx && unitUnreachable(ex.ExceptionCode) {
		p.skip = err
	}
	p.fail(r, err)
	return []request{r}, nil
}

// splittable exceptions concern some of the addresses read, so a smaller
// read may succeed.
func splittable(code byte) bool {
	switch code {
	case gridx.ExceptionCodeIllegalFunction, gridx.ExceptionCodeIllegalDataAddress,
		gridx.ExceptionCodeIllegalDataValue, gridx.ExceptionCodeServerDeviceFailure:
		return true
	}
	return false
}

// unitUnreachable exceptions come from a gateway that cannot reach the unit.
func unitUnreachable(code byte) bool {
	return code == gridx.ExceptionCodeGatewayPathUnavailable || code == gridx.ExceptionCodeGatewayTargetDeviceFailedToRespond
}

func (p *poll) fill(r request, data []byte, t time.Time) {
	for _, i := range r.chans {
		ch := &p.d.chans[i]
		off := int(ch.addr) - int(r.start)
		var v any
		var err error
		if ch.kind.isBit() {
			v, err = decodeBit(data, off)
		} else {
			v, err = ch.decode(data[min(2*off, len(data)):])
		}
		if err != nil {
			p.out[i] = core.BadReading(p.d.name, ch.name, t, fmt.Errorf("modbus: %s %d of unit %d: %w", ch.kind, ch.addr, p.d.unit, err))
			continue
		}
		p.out[i] = core.Reading{Device: p.d.name, Channel: ch.name, Value: v, Unit: ch.unit, Time: t, Quality: core.Good}
	}
}

func (p *poll) fail(r request, err error) {
	t := time.Now()
	for _, i := range r.chans {
		p.out[i] = core.BadReading(p.d.name, p.d.chans[i].name, t, err)
		p.out[i].Unit = p.d.chans[i].unit
	}
}

// readOnce sends one read through the transport owner.
func (c *connector) readOnce(ctx context.Context, unit uint8, r request) ([]byte, error) {
	n := uint16(r.count)
	l, err := c.transport()
	if err != nil {
		return nil, err
	}
	return l.do(ctx, unit, c.set.Timeout, func(ctx context.Context, cl gridx.Client) ([]byte, error) {
		switch r.kind {
		case kindCoil:
			return cl.ReadCoils(ctx, r.start, n)
		case kindDiscrete:
			return cl.ReadDiscreteInputs(ctx, r.start, n)
		case kindHolding:
			return cl.ReadHoldingRegisters(ctx, r.start, n)
		}
		return cl.ReadInputRegisters(ctx, r.start, n)
	})
}
