package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/strict"

	// The IANA time zone database, built in: the appliance has no
	// /usr/share/zoneinfo, and a TimeSpec's zone must load there too.
	_ "time/tzdata"
)

// TimeSpec says where a message carries its timestamp and how it is
// written.
type TimeSpec struct {
	// Path to the timestamp in the JSON payload (required).
	Path string `json:"path" strict:"required"`
	// Format is "rfc3339" (default), "unix" (seconds, fractions allowed),
	// "unix_ms", "unix_us", "unix_ns", or a Go time layout such as
	// "2006-01-02 15:04:05".
	Format string `json:"format"`
	// Zone is the IANA time zone ("Europe/Berlin") of timestamps written
	// without an offset: a Go layout without a zone, or an RFC 3339 time
	// without its offset ("2026-11-24T13:41:00", Tasmota's "Time"). Default
	// UTC for a layout; without it an RFC 3339 time must carry its offset.
	// A timestamp that has an offset keeps it.
	Zone string `json:"zone"`
}

// timeField is a compiled TimeSpec.
type timeField struct {
	path   Path
	format string
	per    int64 // units per second for the unix formats, 0 otherwise
	layout string
	// loc reads timestamps without an offset; nil for rfc3339 without a
	// zone (such a timestamp is an error then).
	loc *time.Location
}

// localRFC3339 is RFC 3339 without the offset, read in the zone.
const localRFC3339 = "2006-01-02T15:04:05.999999999"

// loadZone loads an IANA time zone by name.
func loadZone(name string) (*time.Location, error) {
	switch {
	case name == "Local":
		return nil, errors.New(`zone "Local" depends on the machine osgate runs on: name the zone, e.g. "Europe/Berlin"`)
	case name == "" || strings.ContainsAny(name, "\x00\\") || strings.HasPrefix(name, "/") || strings.Contains(name, ".."):
		return nil, fmt.Errorf("zone %q is not an IANA time zone name such as \"Europe/Berlin\" or \"UTC\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("zone %q is not an IANA time zone name such as \"Europe/Berlin\" or \"UTC\"", name)
	}
	return loc, nil
}

// Timestamps before 2000 or from 2200 on are refused: they come from an
// unset device clock or a wrong format, and osgate never exports 1970.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func compileTime(ts TimeSpec) (*timeField, error) {
	p, err := ParsePath(ts.Path)
	if err != nil {
		return nil, err
	}
	if p.IsRoot() {
		return nil, fmt.Errorf("path must name a field, not the whole payload")
	}
	tf := &timeField{path: p, format: ts.Format}
	if ts.Zone != "" {
		if tf.loc, err = loadZone(ts.Zone); err != nil {
			return nil, err
		}
	}
	switch ts.Format {
	case "", "rfc3339":
		tf.format, tf.layout = "rfc3339", time.RFC3339Nano
	case "unix":
		tf.per = 1
	case "unix_ms":
		tf.per = 1e3
	case "unix_us":
		tf.per = 1e6
	case "unix_ns":
		tf.per = 1e9
	default:
		if !strings.Contains(ts.Format, "2006") {
			return nil, fmt.Errorf("format %q: use rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout with the year written 2006%s", ts.Format, strict.DidYouMean(ts.Format, []string{"rfc3339", "unix", "unix_ms", "unix_us", "unix_ns"}))
		}
		tf.layout = ts.Format
		if tf.loc == nil {
			tf.loc = time.UTC
		}
	}
	if tf.per != 0 && ts.Zone != "" {
		return nil, fmt.Errorf("zone is for timestamps written as dates; a %s time counts from 1970-01-01 UTC and has no zone", tf.format)
	}
	return tf, nil
}

// parse reads the timestamp out of a decoded document. ok is false when the
// field is absent.
func (tf *timeField) parse(doc any) (t time.Time, ok bool, err error) {
	v, ok := tf.path.Lookup(doc)
	if !ok {
		return time.Time{}, false, nil
	}
	if tf.per != 0 {
		var s string
		switch x := v.(type) {
		case json.Number:
			s = string(x)
		case string:
			s = strings.TrimSpace(x)
		default:
			return time.Time{}, true, fmt.Errorf("timestamp %s %s", tf.path, kindOf(v))
		}
		var t time.Time
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			t = time.Unix(i/tf.per, i%tf.per*(1e9/tf.per))
		} else if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f/float64(tf.per)) < 1e11 {
			sec := math.Floor(f / float64(tf.per))
			t = time.Unix(int64(sec), int64((f/float64(tf.per)-sec)*1e9))
		} else {
			return time.Time{}, true, fmt.Errorf("timestamp %s: %q is not a %s time", tf.path, clip(s), tf.format)
		}
		if t.Before(minTime) || !t.Before(maxTime) {
			return time.Time{}, true, fmt.Errorf("timestamp %s: %s is not between 2000 and 2200 as %s", tf.path, clip(s), tf.format)
		}
		return t.UTC(), true, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return time.Time{}, true, fmt.Errorf("timestamp %s %s, not a string in %s", tf.path, kindOf(v), tf.format)
	}
	s = strings.TrimSpace(s)
	if tf.format == "rfc3339" {
		t, err = time.Parse(tf.layout, s)
		if err != nil {
			// Without an offset, the time is in the zone, if one is set.
			lt, lerr := time.ParseInLocation(localRFC3339, s, time.UTC)
			switch {
			case lerr != nil:
				return time.Time{}, true, fmt.Errorf("timestamp %s: %q is not %s", tf.path, clip(s), tf.format)
			case tf.loc == nil:
				return time.Time{}, true, fmt.Errorf("timestamp %s: %q has no zone offset: set the mapping's time.zone (e.g. \"Europe/Berlin\" or \"UTC\")", tf.path, clip(s))
			}
			t = time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), tf.loc)
		}
	} else if t, err = time.ParseInLocation(tf.layout, s, tf.loc); err != nil {
		return time.Time{}, true, fmt.Errorf("timestamp %s: %q is not %s", tf.path, clip(s), tf.format)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, true, fmt.Errorf("timestamp %s: %s is not between 2000 and 2200", tf.path, clip(s))
	}
	return t.UTC(), true, nil
}

// kindOf describes a decoded JSON value for messages: "is an object".
func kindOf(v any) string {
	switch v.(type) {
	case json.Number:
		return "is a number"
	case string:
		return "is a string"
	case bool:
		return "is a boolean"
	case map[string]any:
		return "is an object"
	case []any:
		return "is an array"
	}
	return "is null"
}
