package appliance

import (
	"sync"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/redact"
)

// What the gateway last saw of each channel of a configured device, for
// devices.values and the technician's pages: the last value with its unit
// and quality, the last error and how many readings failed, and a short
// trend of numeric values. It lives in memory only, is bounded by the
// configuration (devices that appear at run time are not kept) and starts
// empty with each connector run.

// Trend bounds: one point per trendStep (the last value in the step),
// trendLen points per numeric channel: the last 10 minutes.
const (
	trendStep = 5 * time.Second
	trendLen  = 120
)

// maxExtraChannels bounds the channels of one device that are not in its
// configuration (a driver's default channels, a listener's payload) that
// are kept; the rest are not shown.
const maxExtraChannels = 256

// maxValueText bounds a string value and an error text kept per channel.
const maxValueText = 256

// deviceValues is the last word of every channel of one device.
type deviceValues struct {
	mu     sync.Mutex
	chans  []*chanValue // configured channels in config order, then others as they came
	byName map[string]*chanValue
	extra  int
}

// chanValue is one channel's last word. Names are the driver's (before
// rename), as in devices.list.
type chanValue struct {
	name     string
	exported string // the name it is exported under, when renamed
	unit     string // the configured unit, else the last one read
	fixed    bool   // unit is configured
	writable bool

	value   any
	quality core.Quality
	at      time.Time // the reading's time
	seen    time.Time // when the gateway had it
	tip     point     // the trend's newest point, of the step now filling
	dropped string    // why the last value was not exported (range, transform), if it was not
	err     string
	errAt   time.Time
	errors  uint64 // bad readings since the connector started
	trend   trend  // the trend's points of the steps before tip's
}

// newDeviceValues prepares the channels of a configured device.
func newDeviceValues(dev config.Device, chans []*core.Channel) *deviceValues {
	dv := &deviceValues{byName: make(map[string]*chanValue, len(chans))}
	for k, ch := range chans {
		cv := &chanValue{name: ch.Name, unit: ch.Unit, fixed: ch.Unit != "", writable: ch.Writable}
		if k < len(dev.Channels) {
			cv.exported = dev.Channels[k].Rename
		}
		dv.chans = append(dv.chans, cv)
		dv.byName[ch.Name] = cv
	}
	return dv
}

// observe records one reading of channel name (the driver's name) after
// its transforms: kept, suppressed by a deadband (a value all the same) or
// dropped (range, transform: shown with why).
func (dv *deviceValues) observe(name string, r *core.Reading, o transform.Outcome, now time.Time) {
	dv.mu.Lock()
	defer dv.mu.Unlock()
	dv.record(dv.channel(-1, name), r, o, now, trendSlot(now))
}

// channel is the state of channel name, the i-th reading of its batch (-1:
// not known), or nil once the device has as many channels that are not in
// its configuration as are kept. A driver that reports its configured
// channels in their order (as the Modbus driver does) finds each at its
// place, without a map lookup. dv.mu must be held.
func (dv *deviceValues) channel(i int, name string) *chanValue {
	if i >= 0 && i < len(dv.chans) && dv.chans[i].name == name {
		return dv.chans[i]
	}
	cv := dv.byName[name]
	if cv == nil {
		if dv.extra >= maxExtraChannels {
			return nil
		}
		dv.extra++
		cv = &chanValue{name: name}
		dv.chans = append(dv.chans, cv)
		dv.byName[name] = cv
	}
	return cv
}

// slot is a time in unix milliseconds and the trend step it falls in.
type slot struct{ ms, step int64 }

// trendSlot is now's slot, worked out once per batch of readings.
func trendSlot(now time.Time) slot {
	ms := now.UnixMilli()
	return slot{ms, ms / trendStep.Milliseconds()}
}

// record applies one reading to cv (nil: not kept). dv.mu must be held.
func (dv *deviceValues) record(cv *chanValue, r *core.Reading, o transform.Outcome, now time.Time, at slot) {
	if cv == nil {
		return
	}
	cv.seen, cv.at, cv.quality = now, r.Time, r.Quality
	if !cv.fixed && r.Unit != "" {
		cv.unit = r.Unit
	}
	if r.Quality == core.Bad {
		cv.errors++
		cv.errAt = now
		cv.err = "bad"
		if r.Err != nil {
			cv.err = clipText(r.Err.Error())
		}
		return
	}
	cv.dropped = ""
	if o.Verdict == transform.Dropped {
		cv.dropped = o.Reason
		if o.Err != nil {
			cv.dropped += ": " + clipText(o.Err.Error())
		}
	}
	// A number keeps the reading's own box: boxing it again would cost an
	// allocation per reading.
	switch v := r.Value.(type) {
	case float64:
		cv.value = r.Value
		addTrend(cv, at, v)
	case int64:
		cv.value = r.Value
		addTrend(cv, at, float64(v))
	case bool:
		cv.value = r.Value
		f := 0.0
		if v {
			f = 1
		}
		addTrend(cv, at, f)
	case string:
		cv.value = clipText(v)
	default:
		cv.value = nil
	}
}

// failed records the readings of a poll that failed as a whole (every
// channel bad): they are not exported, but each channel's error is.
func (dv *deviceValues) failed(rs []core.Reading, now time.Time) {
	for i := range rs {
		if rs[i].Quality == core.Bad {
			dv.observe(rs[i].Channel, &rs[i], transform.Outcome{}, now)
		}
	}
}

// inherit takes the values of the run this one replaces (a restarted
// connector), for the channels both have.
func (dv *deviceValues) inherit(old *deviceValues) {
	old.mu.Lock()
	defer old.mu.Unlock()
	dv.mu.Lock()
	defer dv.mu.Unlock()
	for _, ocv := range old.chans {
		if cv := dv.byName[ocv.name]; cv != nil {
			keep := *cv
			*cv = *ocv
			cv.exported, cv.writable, cv.fixed = keep.exported, keep.writable, keep.fixed
			if keep.fixed {
				cv.unit = keep.unit
			}
			cv.trend = ocv.trend.clone()
		}
	}
}

func clipText(s string) string { return redact.Clip(s, maxValueText) }

// channelValue is one channel in devices.values.
type channelValue struct {
	Channel  string `json:"channel" doc:"the channel's name as the driver reports it (as in devices.list)"`
	Exported string `json:"exported,omitempty" doc:"the name it is exported under, when the channel is renamed"`
	Unit     string `json:"unit,omitempty"`
	Writable bool   `json:"writable,omitempty" doc:"device.write may set it"`
	Value    any    `json:"value,omitempty" doc:"the last value read, after the channel's transforms: a number, a bool or a string; absent before the first good reading"`
	Quality  string `json:"quality,omitempty" doc:"of the last reading: good, uncertain or bad"`
	Time     string `json:"time,omitempty" doc:"the last reading's time"`
	Seen     string `json:"seen,omitempty" doc:"when the gateway had the last reading"`
	Dropped  string `json:"dropped,omitempty" doc:"why the last value was not exported (range, transform), if it was not"`
	Error    string `json:"error,omitempty" doc:"the last error of the channel"`
	ErrorAt  string `json:"error_at,omitempty" doc:"when it happened"`
	Errors   uint64 `json:"errors" doc:"bad readings of the channel since its connector started"`
	// Trend is [unix ms, value] pairs, oldest first.
	Trend [][2]float64 `json:"trend,omitempty" doc:"numeric values of the last 10 minutes, one per 5 s at most: [unix milliseconds, value] pairs, oldest first (bools are 0 and 1)"`
}

// snapshot is the channels for devices.values, with at most points trend
// points each.
func (dv *deviceValues) snapshot(points int) []channelValue {
	dv.mu.Lock()
	defer dv.mu.Unlock()
	out := make([]channelValue, 0, len(dv.chans))
	for _, cv := range dv.chans {
		v := channelValue{Channel: cv.name, Exported: cv.exported, Unit: cv.unit, Writable: cv.writable,
			Value: cv.value, Dropped: cv.dropped, Error: cv.err, ErrorAt: stamp(cv.errAt), Errors: cv.errors,
			Trend: cv.trendPoints(points), Time: stamp(cv.at), Seen: stamp(cv.seen)}
		if !cv.seen.IsZero() {
			v.Quality = cv.quality.String()
		}
		out = append(out, v)
	}
	return out
}
