// Package core holds the contracts between osgate's core and its drivers:
// readings, devices, channels, the connector interfaces, the registry and
// the Stats a driver counts on. It imports nothing of osgate but the
// internal plumbing; drivers import it and nothing else of the gateway
// (see drivers/README.md for the rules and a driver written in one folder).
package core

import (
	"fmt"
	"time"
)

// Quality says how far a Reading can be trusted.
type Quality uint8

const (
	// Good is a value read from the device as it is.
	Good Quality = iota
	// Uncertain is a value whose timestamp or origin is doubtful, e.g. taken
	// before the system clock was set.
	Uncertain
	// Bad is a channel that could not be read; Reading.Err says why.
	Bad
)

func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	case Bad:
		return "bad"
	}
	return fmt.Sprintf("quality(%d)", uint8(q))
}

// Reading is one value of one channel of one device.
type Reading struct {
	Device, Channel string
	// Value is float64, int64, bool or string; nothing else. It is nil only
	// when Quality is Bad.
	Value any
	// Unit is the SI unit where one exists ("V", "Wh", "m^3", "°C").
	Unit string
	// Time is the device's own timestamp if it sends one, else when read.
	Time    time.Time
	Quality Quality
	// Err says why a channel is Bad: timeout, exception, CRC, decode.
	Err error
}

// BadReading is a Reading of a channel that failed.
func BadReading(device, channel string, t time.Time, err error) Reading {
	return Reading{Device: device, Channel: channel, Time: t, Quality: Bad, Err: err}
}
