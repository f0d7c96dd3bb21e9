package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// How the pages show values and times. The script (static/app.js) shows
// the same for live updates: the server sends it the texts these make.

// parseTime reads an RFC 3339 time of an RPC result ("" is zero).
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// ago says how long ago (or how soon) an RFC 3339 time is: "12 s ago".
func ago(s string) string { return agoAt(s, time.Now()) }

func agoAt(s string, now time.Time) string {
	t := parseTime(s)
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + span(-d)
	}
	if d < time.Second {
		return "just now"
	}
	return span(d) + " ago"
}

// span is a duration for people, in its largest unit: "12 s", "5 min",
// "3 h", "2 d".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d d", int(d/(24*time.Hour)))
}

// age is how old an RFC 3339 time is, "" for none: "3 min".
func age(s string) string {
	t := parseTime(s)
	if t.IsZero() {
		return ""
	}
	return span(max(time.Since(t), 0))
}

// clockText is an RFC 3339 time in UTC to the second, as the page shows
// it before the script turns it into the browser's local time.
func clockText(s string) string {
	t := parseTime(s)
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// valueText is a channel's value as the page shows it.
func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case float64:
		return numText(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}

// numText shows a number with at most 9 significant digits, without
// trailing zeros.
func numText(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', 9, 64)
}

// withUnit is a value and its unit: "230.1 V".
func withUnit(v any, unit string) string {
	t := valueText(v)
	if unit == "" || v == nil {
		return t
	}
	return t + " " + unit
}

// bytesText is a size for people: "3.5 MiB".
func bytesText(v any) string {
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case uint64:
		n = float64(x)
	case int64:
		n = float64(x)
	case int:
		n = float64(x)
	default:
		return "—"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%.0f B", n)
	}
	exp := 0
	for n >= unit && exp < 5 {
		n /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", n, " KMGTP"[exp])
}

// shortVersion is the first 12 digits of a config version.
func shortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

// trendWindow is the time a sparkline spans: what the gateway keeps.
const trendWindow = 10 * time.Minute

// spark draws a trend as an inline SVG polyline over the last 10 minutes
// (w × h), with its range for screen readers; the script extends it as
// values arrive (data-trend). Only numbers go into it.
func spark(channel string, points [][2]float64, w, h int) template.HTML {
	return sparkAt(channel, points, w, h, time.Now())
}

func sparkAt(channel string, points [][2]float64, w, h int, now time.Time) template.HTML {
	if len(points) == 0 {
		return ""
	}
	lo, hi := points[0][1], points[0][1]
	for _, p := range points {
		lo, hi = min(lo, p[1]), max(hi, p[1])
	}
	// The line spans the points kept, at most the last 10 minutes: a
	// young trend fills the width instead of sitting at its right end.
	end := math.Max(float64(now.UnixMilli()), points[len(points)-1][0])
	start := math.Max(end-float64(trendWindow.Milliseconds()), points[0][0])
	if end-start < 1000 {
		start = end - 1000
	}
	var b strings.Builder
	data, _ := json.Marshal(points)
	label := fmt.Sprintf("trend of %s over the last 10 minutes: from %s to %s", channel, numText(lo), numText(hi))
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" data-trend="%s"><polyline points="`,
		w, h, w, h, template.HTMLEscapeString(label), template.HTMLEscapeString(string(data)))
	for i, p := range points {
		x := (p[0] - start) / (end - start) * float64(w)
		y := float64(h) / 2
		if hi > lo {
			y = 1 + (hi-p[1])/(hi-lo)*float64(h-2)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", math.Max(0, math.Min(float64(w), x)), y)
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String())
}

// stateWord says a device state in words for the page.
func stateWord(s string) string {
	switch s {
	case "unknown":
		return "not heard from yet"
	}
	return s
}

var funcs = template.FuncMap{
	"ago":      ago,
	"age":      age,
	"clock":    clockText,
	"value":    valueText,
	"withUnit": withUnit,
	"bytes":    bytesText,
	"short":    shortVersion,
	"spark":    spark,
	"state":    stateWord,
	"num": func(v any) string {
		if f, ok := v.(float64); ok {
			return numText(f)
		}
		return valueText(v)
	},
	"pct": func(v any) string {
		if f, ok := v.(float64); ok {
			return strconv.FormatFloat(f, 'f', 1, 64) + " %"
		}
		return "—"
	},
	"join":    strings.Join,
	"version": func() string { _, v := staticAssets(); return v },
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
	"deref": func(b *bool) bool { return b != nil && *b },
}
