package lograte

import (
	"testing"
	"time"

	"github.com/osgate/osgate/internal/lru"
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

func TestKeyed(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	k := NewKeyed[string](2, time.Minute, lru.Metrics{})
	for i, c := range []struct {
		key string
		at  time.Duration
		ok  bool
	}{
		{"a", 0, true},
		{"a", time.Second, false},
		{"b", time.Second, true},
		{"a", time.Minute, true}, // a period later
		{"c", time.Minute, true}, // forgets b, the least recently seen
		{"b", time.Minute, true}, // forgotten: logged again
		{"c", 2 * time.Second, false},
	} {
		if ok := k.Allow(c.key, t0.Add(c.at)); ok != c.ok {
			t.Errorf("call %d (%s at +%s): %v, want %v", i, c.key, c.at, ok, c.ok)
		}
	}
	once := NewKeyed[int](10, 0, lru.Metrics{})
	if !once.Allow(1, t0) || once.Allow(1, t0.Add(24*time.Hour)) {
		t.Error("period 0 lets a key through more than once")
	}
}
