package transform

import (
	"math"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// deadband remembers the last reported value of a channel and decides
// whether the next one is worth reporting. Its owner (Chain) locks it.
type deadband struct {
	abs, pct float64
	silence  time.Duration

	seen     bool // a reading was reported
	last     any  // the last reported value
	lastNum  float64
	lastIsN  bool
	lastQ    core.Quality
	lastTime time.Time
}

// report says whether a reading of value v (f when numeric) and quality q
// is reported at now, and remembers it when it is.
func (d *deadband) report(v any, f float64, numeric bool, q core.Quality, now time.Time) bool {
	if d.seen && q == d.lastQ && !d.silent(now) && !d.changed(v, f, numeric) {
		return false
	}
	d.seen, d.last, d.lastNum, d.lastIsN, d.lastQ, d.lastTime = true, v, f, numeric, q, now
	return true
}

// noteQuality remembers a quality that passed without a value (Bad), so
// that the next good reading counts as a change.
func (d *deadband) noteQuality(q core.Quality) { d.lastQ = q }

func (d *deadband) silent(now time.Time) bool {
	return d.silence > 0 && now.Sub(d.lastTime) >= d.silence
}

// changed compares with the last reported value. Numbers change when they
// moved by at least the absolute deadband, or the percent of the last
// value; with a threshold of 0, any change counts. Bools and strings change
// when they differ.
func (d *deadband) changed(v any, f float64, numeric bool) bool {
	if numeric != d.lastIsN {
		return true
	}
	if !numeric {
		switch x := v.(type) {
		case bool:
			y, ok := d.last.(bool)
			return !ok || x != y
		case string:
			y, ok := d.last.(string)
			return !ok || x != y
		}
		return true
	}
	threshold := d.abs
	if d.pct > 0 {
		threshold = d.pct / 100 * math.Abs(d.lastNum)
	}
	delta := math.Abs(f - d.lastNum)
	if threshold == 0 {
		return f != d.lastNum
	}
	return !(delta < threshold)
}
