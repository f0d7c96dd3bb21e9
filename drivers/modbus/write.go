package modbus

import (
	"context"
	"encoding/binary"
	"fmt"

	gridx "github.com/grid-x/modbus"

	"github.com/osgate/osgate/drivers/core"
)

// Write sets a writable coil or holding register channel. value has been
// through the channel's inverse transform: float64, int64, bool or string.
// A bit of a register is written with a mask write (FC 22), leaving the
// register's other bits alone.
func (c *connector) Write(ctx context.Context, dev *core.Device, name string, value any) error {
	d, err := c.device(dev.Name)
	if err != nil {
		return err
	}
	i, ok := d.byName[name]
	if !ok {
		return fmt.Errorf("modbus: device %q has no channel %q", d.name, name)
	}
	ch := &d.chans[i]
	if !ch.writable {
		return fmt.Errorf("modbus: channel %q of device %q is not writable (set \"writable\": true on a coil or holding register channel)", name, d.name)
	}
	op, err := writeOp(ch, value)
	if err != nil {
		return fmt.Errorf("modbus: write %q of device %q: %w", name, d.name, err)
	}
	l, err := c.transport()
	if err == nil {
		_, err = l.do(ctx, d.unit, c.set.Timeout, op)
	}
	if err != nil {
		return fmt.Errorf("modbus: write %q of device %q (unit %d, %s %d): %w", name, d.name, d.unit, ch.kind, ch.addr, err)
	}
	d.log.Info("modbus: wrote channel", "channel", name, "value", value)
	return nil
}

type op = func(ctx context.Context, cl gridx.Client) ([]byte, error)

// writeOp prepares the request that writes value to ch.
func writeOp(ch *channel, value any) (op, error) {
	switch {
	case ch.kind == kindCoil:
		on, err := toBool(value)
		if err != nil {
			return nil, err
		}
		v := uint16(0x0000)
		if on {
			v = 0xFF00
		}
		return func(ctx context.Context, cl gridx.Client) ([]byte, error) { return cl.WriteSingleCoil(ctx, ch.addr, v) }, nil
	case ch.typ == typeBit:
		on, err := toBool(value)
		if err != nil {
			return nil, err
		}
		and, or := ^uint16(1<<ch.bit), uint16(0)
		if on {
			or = 1 << ch.bit
		}
		return func(ctx context.Context, cl gridx.Client) ([]byte, error) {
			return cl.MaskWriteRegister(ctx, ch.addr, and, or)
		}, nil
	}
	regs, err := encodeRegisters(ch, value)
	if err != nil {
		return nil, err
	}
	if len(regs) == 2 {
		v := binary.BigEndian.Uint16(regs)
		return func(ctx context.Context, cl gridx.Client) ([]byte, error) {
			return cl.WriteSingleRegister(ctx, ch.addr, v)
		}, nil
	}
	return func(ctx context.Context, cl gridx.Client) ([]byte, error) {
		return cl.WriteMultipleRegisters(ctx, ch.addr, uint16(len(regs)/2), regs)
	}, nil
}
