package clock

import "github.com/osgate/osgate/internal/timesource"

// The time sources of the clock block, parsed by internal/timesource
// (which the configuration's checks use too).
type (
	Source = timesource.Source
	Kind   = timesource.Kind
)

const (
	NTP    = timesource.NTP
	HTTPS  = timesource.HTTPS
	Remote = timesource.Remote
	RTC    = timesource.RTC
	System = timesource.System
)

// ParseSource reads one entry of clock.sources.
func ParseSource(s string) (Source, error) { return timesource.ParseSource(s) }
