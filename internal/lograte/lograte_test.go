package lograte

import (
	"testing"
	"time"
)

func TestLogLimit(t *testing.T) {
	l := Limit{Burst: 2, Window: time.Minute}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i, want := range []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0},
		{time.Second, true, 0},
		{2 * time.Second, false, 0},
		{3 * time.Second, false, 0},
		{time.Minute, true, 2},
		{time.Minute + time.Second, true, 0},
		{time.Minute + 2*time.Second, false, 0},
	} {
		ok, n := l.Allow(t0.Add(want.at))
		if ok != want.ok || n != want.suppressed {
			t.Errorf("call %d at +%s: %v, %d; want %v, %d", i, want.at, ok, n, want.ok, want.suppressed)
		}
	}
}
