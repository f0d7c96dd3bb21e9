// Package modbus is osgate's Modbus connector: Modbus TCP, RTU on a serial
// line (RS-485) and RTU through a TCP serial server, built on
// github.com/grid-x/modbus. It polls coils, discrete inputs, holding and
// input registers, merges each device's channels into the fewest reads,
// splits a read that answers with an exception so only the failing channels
// are bad, and writes coils and holding registers.
//
// One transport owner per TCP endpoint or serial port serialises the
// requests of every device on it (see link.go); a unit that does not answer
// costs the others at most its own timeout.
package modbus

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

func init() { core.Register("modbus", New) }

// connector is one configured modbus connector.
type connector struct {
	name    string
	log     *slog.Logger
	set     settings
	devices map[string]*device

	linkCfg  linkConfig
	linkMu   sync.Mutex
	link     *link // acquired by the first Poll or Write
	isClosed bool

	closeOnce sync.Once
	closeErr  error
}

// device is one configured slave with its read plan.
type device struct {
	name   string
	unit   uint8
	chans  []channel
	byName map[string]int
	log    *slog.Logger

	mu     sync.Mutex // guards blocks' split state
	blocks []*block
}

// block is one planned read and, after an exception, the smaller reads it
// was split into; they are used until reprobe has passed since splitAt.
type block struct {
	whole   request
	leaves  []request
	splitAt time.Time
}

// New checks the configuration and prepares the connector; it does no I/O.
// The transport is opened by the first Poll or Write.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	set, lc, es := parseSettings(cfg.Settings)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("connector", cfg.Name)
	c := &connector{name: cfg.Name, log: log, set: set, devices: map[string]*device{}}
	for i, d := range cfg.Devices {
		path := strict.Index("devices", i)
		unit, chans, errs := parseDevice(d)
		es.Merge(path, errs.Err())
		if _, dup := c.devices[d.Name]; dup {
			es.Add(path+".name", "device %q appears twice", d.Name)
			continue
		}
		dev := &device{name: d.Name, unit: unit, chans: chans, byName: map[string]int{}, log: log.With("device", d.Name, "unit_id", unit)}
		for j, ch := range chans {
			if ch.name == "" {
				continue // its settings did not decode: those errors say why
			}
			if _, dup := dev.byName[ch.name]; dup {
				es.Add(strict.Index(path+".channels", j)+".name", "channel %q appears twice in device %q", ch.name, d.Name)
			}
			if !ch.kind.isBit() && ch.width > set.MaxRegisters {
				es.Add(strict.Index(path+".channels", j)+".length", "needs %d registers, more than settings.max_registers (%d)", ch.width, set.MaxRegisters)
			}
			dev.byName[ch.name] = j
		}
		c.devices[d.Name] = dev
	}
	if err := es.Err(); err != nil {
		es.Sort()
		return nil, err
	}
	for _, dev := range c.devices {
		for _, r := range planReads(dev.chans, set.MaxGap, set.MaxRegisters) {
			dev.blocks = append(dev.blocks, &block{whole: r})
		}
	}
	c.linkCfg = lc
	return c, nil
}

// transport returns the owner of the connector's endpoint or port, taking
// a share of it on first use. It is not taken in New, so that checking a
// new configuration while the old one runs does not collide with it.
func (c *connector) transport() (*link, error) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	if c.isClosed {
		return nil, &errLinkDown{fmt.Errorf("connector %q is closed", c.name)}
	}
	if c.link == nil {
		l, err := acquireLink(c.linkCfg, c.log)
		if err != nil {
			return nil, &errLinkDown{err}
		}
		c.link = l
	}
	return c.link, nil
}

// Close releases the transport; the last connector on it closes it.
func (c *connector) Close() error {
	c.closeOnce.Do(func() {
		c.linkMu.Lock()
		defer c.linkMu.Unlock()
		c.isClosed = true
		if c.link == nil {
			return
		}
		if err := c.link.release(); err != nil {
			c.closeErr = fmt.Errorf("modbus: close %s: %w", c.link.cfg.address, err)
		}
	})
	return c.closeErr
}

func (c *connector) device(name string) (*device, error) {
	d, ok := c.devices[name]
	if !ok {
		return nil, fmt.Errorf("modbus: connector %q has no device %q", c.name, name)
	}
	return d, nil
}
