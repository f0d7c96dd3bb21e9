package mapping

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// TimeSpec says where a message carries its timestamp and how it is
// written.
type TimeSpec struct {
	// Path to the timestamp in the JSON payload (required).
	Path string `json:"path" strict:"required"`
	// Format is "rfc3339" (default), "unix" (seconds, fractions allowed),
	// "unix_ms", "unix_us", "unix_ns", or a Go time layout such as
	// "2006-01-02 15:04:05" (read as UTC unless it has a zone).
	Format string `json:"format"`
}

// timeField is a compiled TimeSpec.
type timeField struct {
	path   Path
	format string
	per    int64 // units per second for the unix formats, 0 otherwise
	layout string
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
			return nil, fmt.Errorf("format %q: use rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout with the year written 2006", ts.Format)
		}
		tf.layout = ts.Format
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
	t, err = time.Parse(tf.layout, strings.TrimSpace(s))
	if err != nil {
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
