//go:build !linux

package clock

import (
	"errors"
	"time"
)

// osSystem is the operating system's clock; only Linux lets osgate set it.
type osSystem struct{}

var errNotLinux = errors.New("setting the clock is supported on Linux only")

func (osSystem) Now() time.Time                { return time.Now() }
func (osSystem) Step(time.Time) error          { return errNotLinux }
func (osSystem) Slew(time.Duration) error      { return errNotLinux }
func (osSystem) Boot() (string, time.Duration) { return "", 0 }
