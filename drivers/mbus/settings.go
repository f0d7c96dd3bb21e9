package mbus

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/board"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// settings is the connector's "settings" object.
type settings struct {
	// Port is a device path or a board port name ("rs485-0").
	Port   string `json:"port" strict:"required"`
	Baud   int    `json:"baud"`
	Parity string `json:"parity"`
	// Timeout is how long a meter may take to start answering.
	Timeout time.Duration `json:"timeout"`
	// Retries repeats a request that got no or a damaged reply.
	Retries *int `json:"retries"`
	// MaxTelegrams bounds a multi-telegram readout.
	MaxTelegrams int `json:"max_telegrams"`
	// Echo: the level converter echoes what the master sends.
	Echo bool `json:"echo"`
}

var baudRates = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400}

// decodeSettings decodes and checks the settings; paths in errors are
// relative to the connector ("settings.baud").
func decodeSettings(raw []byte) (PortConfig, error) {
	s := settings{Baud: 2400, Parity: "even"}
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	var es strict.Errors
	es.Merge("settings", strict.Decode(raw, &s))
	cfg := PortConfig{Baud: s.Baud, Parity: s.Parity, Timeout: s.Timeout, MaxTelegrams: s.MaxTelegrams, Echo: s.Echo}
	if s.Port != "" {
		p, err := board.ResolvePort(s.Port)
		if err != nil {
			es.Add("settings.port", "%v", err)
		}
		cfg.Path = p
	}
	if !validBaud(s.Baud) {
		es.Add("settings.baud", "%d is not an M-Bus baud rate (%s)", s.Baud, strings.Trim(fmt.Sprint(baudRates), "[]"))
	}
	if _, err := cfg.mode(); err != nil {
		es.Add("settings.parity", "%q: want \"even\" (the M-Bus standard), \"none\" or \"odd\"%s", s.Parity, strict.DidYouMean(s.Parity, []string{"even", "none", "odd"}))
	}
	if s.Timeout < 0 || s.Timeout > time.Minute {
		es.Add("settings.timeout", "%s: want a duration from 0s (automatic) to 1m", s.Timeout)
	}
	if s.Retries != nil {
		if *s.Retries < 0 || *s.Retries > 10 {
			es.Add("settings.retries", "%d: want 0 to 10", *s.Retries)
		}
		cfg.Retries = *s.Retries
		if cfg.Retries == 0 {
			cfg.Retries = -1 // none
		}
	}
	if s.MaxTelegrams < 0 || s.MaxTelegrams > 255 {
		es.Add("settings.max_telegrams", "%d: want 1 to 255", s.MaxTelegrams)
	}
	return cfg, es.Err()
}

func validBaud(b int) bool {
	for _, r := range baudRates {
		if b == r {
			return true
		}
	}
	return false
}

// deviceSettings are the driver's keys of a device object.
type deviceSettings struct {
	// Address is a primary address (5 or "5") or a secondary address
	// ("12345678" or "12345678A5110407").
	Address any `json:"address" strict:"required"`
}

// channelSettings are the driver's keys of a channel object: either the
// index of a record, or what the record must be.
type channelSettings struct {
	Record   *int   `json:"record"`
	Quantity string `json:"quantity"`
	Function string `json:"function"`
	Storage  int    `json:"storage"`
	Tariff   int    `json:"tariff"`
	Subunit  int    `json:"subunit"`
}

var functions = []string{FuncInstantaneous, FuncMaximum, FuncMinimum, FuncError, FuncActual, FuncManufacturerSpecific}

// device is a configured meter, ready to poll.
type device struct {
	name     string
	addr     Address
	channels []selector

	// mu guards dec, which decodes the device's readouts.
	mu  sync.Mutex
	dec Decoder
}

// selector picks one record of a readout for a channel.
type selector struct {
	channel  string
	record   int // -1: match by the fields below
	quantity string
	function string
	storage  int
	tariff   int
	subunit  int
}

func (s selector) String() string {
	if s.record >= 0 {
		return fmt.Sprintf("record %d", s.record)
	}
	return fmt.Sprintf("quantity %q, function %s, storage %d, tariff %d, subunit %d", s.quantity, s.function, s.storage, s.tariff, s.subunit)
}

func decodeDevice(path string, d *core.Device) (*device, error) {
	var es strict.Errors
	var ds deviceSettings
	es.Merge(path, strict.Decode(d.Settings, &ds))
	dev := &device{name: d.Name}
	if ds.Address != nil {
		a, err := addressSetting(ds.Address)
		if err != nil {
			es.Add(strict.Join(path, "address"), "%v", err)
		}
		dev.addr = a
	}
	if len(d.Channels) == 0 {
		es.Add(strict.Join(path, "channels"), "an M-Bus device needs at least one channel (see `osgate mbus read` for the records a meter sends)")
	}
	for i, c := range d.Channels {
		sel, err := decodeChannel(strict.Index(strict.Join(path, "channels"), i), c)
		es.Merge("", err)
		dev.channels = append(dev.channels, sel)
	}
	return dev, es.Err()
}

func addressSetting(v any) (Address, error) {
	switch v := v.(type) {
	case float64:
		if v != math.Trunc(v) {
			return Address{}, fmt.Errorf("%v is not a primary address 0-%d", v, addrMaxPrimary)
		}
		return ParseAddress(strconv.FormatFloat(v, 'f', 0, 64))
	case string:
		return ParseAddress(v)
	}
	return Address{}, fmt.Errorf("want a primary address (0-%d) or a secondary address string, not %T", addrMaxPrimary, v)
}

func decodeChannel(path string, c *core.Channel) (selector, error) {
	var es strict.Errors
	var cs channelSettings
	es.Merge(path, strict.Decode(c.Settings, &cs))
	sel := selector{channel: c.Name, record: -1, quantity: cs.Quantity, function: cs.Function,
		storage: cs.Storage, tariff: cs.Tariff, subunit: cs.Subunit}
	switch {
	case cs.Record != nil && cs.Quantity != "":
		es.Add(path, "give either \"record\" (an index) or \"quantity\", not both")
	case cs.Record != nil:
		if *cs.Record < 0 {
			es.Add(strict.Join(path, "record"), "%d: want a record index from 0", *cs.Record)
		}
		sel.record = *cs.Record
	case cs.Quantity == "":
		es.Add(path, "say which record: \"quantity\" (e.g. \"Energy\", with function, storage, tariff, subunit) or \"record\" (its index)")
	}
	if sel.function == "" {
		sel.function = FuncInstantaneous
	} else if !oneOf(sel.function, functions) {
		es.Add(strict.Join(path, "function"), "%q: want one of %s%s", sel.function, strings.Join(functions, ", "), strict.DidYouMean(sel.function, functions))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"storage", cs.Storage}, {"tariff", cs.Tariff}, {"subunit", cs.Subunit}} {
		if f.v < 0 {
			es.Add(strict.Join(path, f.name), "%d: want 0 or more", f.v)
		}
	}
	return sel, es.Err()
}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}
