package mbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

func init() { core.Register("mbus", New) }

// Connector reads the meters of one M-Bus line.
type Connector struct {
	name    string
	bus     *Bus
	log     *slog.Logger
	devices map[string]*device
}

// New checks the configuration and prepares the line; it does no I/O.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	var es strict.Errors
	pc, err := decodeSettings(cfg.Settings)
	es.Merge("", err)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("connector", cfg.Name)
	c := &Connector{name: cfg.Name, log: log, devices: map[string]*device{}}
	for i, d := range cfg.Devices {
		dev, err := decodeDevice(strict.Index("devices", i), d)
		es.Merge("", err)
		c.devices[d.Name] = dev
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	c.bus = NewBus(pc, log)
	return c, nil
}

// Close releases the serial port.
func (c *Connector) Close() error { return c.bus.Close() }

// Poll reads the meter and returns one Reading per channel. A channel whose
// record the meter did not send is Bad; a meter that does not answer, or
// answers with an application error, fails the whole poll.
func (c *Connector) Poll(ctx context.Context, d *core.Device) ([]core.Reading, error) {
	dev, ok := c.devices[d.Name]
	if !ok {
		return nil, fmt.Errorf("mbus: device %q is not configured on connector %q", d.Name, c.name)
	}
	// The device's decoder keeps its storage from poll to poll; only the
	// values of the channels become interfaces, in their readings.
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if err := c.bus.ReadInto(ctx, dev.addr, &dev.dec); err != nil {
		c.log.Warn("mbus: poll failed", "device", d.Name, "address", dev.addr.String(), "err", err)
		return nil, err
	}
	now := time.Now()
	fields := dev.dec.Fields
	out := make([]core.Reading, 0, len(dev.channels))
	for _, sel := range dev.channels {
		f, err := sel.pick(fields)
		if err != nil {
			c.log.Debug("mbus: channel not in readout", "device", d.Name, "channel", sel.channel, "err", err)
			out = append(out, core.BadReading(d.Name, sel.channel, now, err))
			continue
		}
		out = append(out, reading(d.Name, sel.channel, f, now))
	}
	if cap(dev.dec.Fields) > maxKeptFields {
		dev.dec.Fields = nil // a long readout: do not keep its storage
	}
	return out, nil
}

// maxKeptFields bounds the records a device's decoder keeps storage for
// between polls (about 150 bytes each); a meter sends a few dozen.
const maxKeptFields = 256

// ErrNoRecord is a channel whose record was not in the meter's readout.
var ErrNoRecord = errors.New("no such record in the meter's readout")

// pick finds the channel's record: by index, or the first that matches.
func (s selector) pick(records []Field) (*Field, error) {
	if s.record >= 0 {
		if s.record < len(records) {
			return &records[s.record], nil
		}
		return nil, fmt.Errorf("mbus: %s: %w (it has %d records)", s, ErrNoRecord, len(records))
	}
	for i := range records {
		r := &records[i]
		if strings.EqualFold(r.Quantity, s.quantity) && r.Function == s.function &&
			r.Storage == s.storage && r.Tariff == s.tariff && r.Device == s.subunit {
			return r, nil
		}
	}
	return nil, fmt.Errorf("mbus: %s: %w (it has %d records)", s, ErrNoRecord, len(records))
}

// ErrInvalidValue is a record the meter itself marks as invalid.
var ErrInvalidValue = errors.New("the meter marks the value invalid")

func reading(dev, ch string, r *Field, now time.Time) core.Reading {
	if r.Invalid {
		return core.BadReading(dev, ch, now, fmt.Errorf("mbus: %s: %w", r.Quantity, ErrInvalidValue))
	}
	if r.Value.Kind == ValueNone {
		return core.BadReading(dev, ch, now, fmt.Errorf("mbus: %s: the record carries no value", r.Quantity))
	}
	if r.Value.Kind == ValueText && r.Unit != "" && r.Unit != "-" {
		// A quantity with a unit whose BCD field holds non-decimal digits.
		return core.BadReading(dev, ch, now, fmt.Errorf("mbus: %s: %w: BCD digits %s are not a number (meters send these in error states)", r.Quantity, ErrInvalidValue, r.Value.Text))
	}
	unit := r.Unit
	if unit == "-" {
		unit = ""
	}
	return core.Reading{Device: dev, Channel: ch, Value: r.Value.Any(), Unit: unit, Time: now, Quality: core.Good}
}

// Commands offers "scan" (find meters on the line) and "read" (one
// meter's full readout, to choose channels).
func (c *Connector) Commands() map[string]core.Command {
	return map[string]core.Command{
		"scan": {
			Help:   `find meters on the line: {"mode": "primary"|"secondary"|"both", "first": 0, "last": 250}; returns meters, collisions and config entries`,
			Params: ScanOptions{}, Result: ScanResult{},
			Run: c.scanCommand,
		},
		"read": {
			Help:   `read one meter: {"address": "5" or "12345678"}; returns its telegrams`,
			Params: readParams{}, Result: []*Telegram{},
			Run: c.readCommand,
		},
	}
}

func (c *Connector) scanCommand(ctx context.Context, params json.RawMessage) (any, error) {
	var o ScanOptions
	if len(params) > 0 && string(params) != "null" {
		if err := strict.Decode(params, &o); err != nil {
			return nil, err
		}
	}
	c.log.Info("mbus: scan started", "mode", o.Mode)
	o.Progress = func(p ScanProgress) {
		c.log.Debug("mbus: scan progress", "phase", p.Phase, "probe", p.Probe, "done", p.Done, "found", p.Found)
		core.Progress(ctx, p)
	}
	res, err := c.bus.Scan(ctx, o)
	if err == nil {
		c.log.Info("mbus: scan done", "meters", len(res.Meters), "transactions", res.Transactions)
	}
	return res, err
}

type readParams struct {
	Address any `json:"address" strict:"required" doc:"a primary address 0-250 (a number or a string), an 8-digit ID or a 16-digit secondary address"`
}

func (c *Connector) readCommand(ctx context.Context, params json.RawMessage) (any, error) {
	var p readParams
	if err := strict.Decode(params, &p); err != nil {
		return nil, err
	}
	a, err := addressSetting(p.Address)
	if err != nil {
		return nil, strict.Errors{{Path: "address", Msg: err.Error()}}
	}
	return c.bus.Read(ctx, a)
}

var (
	_ core.Poller    = (*Connector)(nil)
	_ core.Commander = (*Connector)(nil)
)
