package ota

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// window is a daily maintenance window in local time; it may span
// midnight ("23:00-01:00").
type window struct{ from, to int } // minutes after midnight

func parseWindow(s string) (*window, error) {
	bad := fmt.Errorf("ota: maintenance window %q is not like \"02:00-04:00\"", s)
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, bad
	}
	from, err1 := clock(a, 23)
	to, err2 := clock(b, 24)
	if err1 != nil || err2 != nil || from == to%(24*60) || to > 24*60 {
		return nil, bad
	}
	return &window{from: from, to: to % (24 * 60)}, nil
}

// clock parses "HH:MM" into minutes after midnight.
func clock(s string, maxHour int) (int, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(ms) != 2 || len(hs) < 1 || len(hs) > 2 {
		return 0, fmt.Errorf("not HH:MM")
	}
	h, err := strconv.Atoi(hs)
	if err != nil || h < 0 || h > maxHour || hs[0] == '+' {
		return 0, fmt.Errorf("bad hour")
	}
	m, err := strconv.Atoi(ms)
	if err != nil || m < 0 || m > 59 || ms[0] == '+' {
		return 0, fmt.Errorf("bad minute")
	}
	return h*60 + m, nil
}

// until is how long from t until the window opens (0 inside it).
func (w *window) until(t time.Time) time.Duration {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	min := int(t.Sub(day) / time.Minute)
	inside := w.from < w.to && min >= w.from && min < w.to ||
		w.from > w.to && (min >= w.from || min < w.to)
	if inside {
		return 0
	}
	open := day.Add(time.Duration(w.from) * time.Minute)
	if !open.After(t) {
		open = open.AddDate(0, 0, 1)
	}
	return open.Sub(t)
}
