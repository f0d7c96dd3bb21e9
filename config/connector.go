package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// ConnectorConfig builds what connector i's driver Factory receives:
// settings ("{}" when absent), devices with their interval and timeout
// (defaults applied) and the driver's own keys of each device and channel,
// and the state dir. logger is handed to the driver as is (give it the
// connector's attributes); nil discards logs.
func (c *Config) ConnectorConfig(i int, logger *slog.Logger) core.ConnectorConfig {
	cn := &c.Connectors[i]
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cc := core.ConnectorConfig{
		Name:     cn.Name,
		Type:     cn.Type,
		Settings: object(cn.Settings),
		Devices:  make([]*core.Device, 0, len(cn.Devices)),
		StateDir: c.Gateway.StateDir,
		Logger:   logger,
	}
	for _, d := range cn.Devices {
		interval, timeout := d.Interval, d.Timeout
		if interval == 0 {
			interval = defaultInterval
		}
		if timeout == 0 {
			timeout = min(interval, maxDefaultTimeout)
		}
		dev := &core.Device{
			Name:     d.Name,
			Interval: interval,
			Timeout:  timeout,
			Settings: object(d.Driver),
			Channels: make([]*core.Channel, 0, len(d.Channels)),
		}
		for _, ch := range d.Channels {
			dev.Channels = append(dev.Channels, &core.Channel{
				Name:     ch.Name,
				Unit:     ch.Unit,
				Writable: ch.Writable,
				Settings: object(ch.Driver),
			})
		}
		cc.Devices = append(cc.Devices, dev)
	}
	return cc
}

// object returns a copy of raw, or "{}" when raw is absent or null.
func object(raw []byte) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return []byte("{}")
	}
	return bytes.Clone(raw)
}

// checkDrivers lets each connector's driver check its settings, devices
// and channels: it builds the connector (which does no I/O) and closes it.
// The driver's errors are placed under connectors[i].
func (c *Config) checkDrivers(es *strict.Errors) {
	listens := c.coreListens()
	for i := range c.Connectors {
		cn := &c.Connectors[i]
		p := strict.Index("connectors", i)
		if cn.Type == "" {
			continue
		}
		f, ok := core.Lookup(cn.Type)
		if !ok {
			known := strings.Join(core.Types(), ", ")
			if known == "" {
				known = "none registered"
			}
			hint := ""
			if s := strict.Suggest(cn.Type, core.Types()); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			es.Add(p+".type", "unknown connector type %q (%sknown: %s)", cn.Type, hint, known)
			continue
		}
		ls, err := tryFactory(f, c.ConnectorConfig(i, nil))
		es.Merge(p, err)
		if cn.Enabled == nil || *cn.Enabled {
			for _, l := range ls {
				listens = append(listens, listen{path: strict.Join(p, l.Path), addr: l.Addr})
			}
		}
	}
	checkPorts(es, listens)
}

// tryFactory builds and closes one connector, and returns the addresses
// it would listen on. A driver that panics is a bug, but it must not take
// config validation down with it.
func tryFactory(f core.Factory, cc core.ConnectorConfig) (ls []core.Listen, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("driver %s panicked while checking its configuration (a bug; please report it): %v", cc.Type, r)
		}
	}()
	conn, err := f(cc)
	if b, ok := conn.(core.Binder); ok && err == nil {
		ls = b.Listens()
	}
	if conn != nil {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("driver %s: closing after the check: %w", cc.Type, cerr)
		}
	}
	return ls, err
}
