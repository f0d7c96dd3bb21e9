package rpc

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLogLimit(t *testing.T) {
	l := logLimit{burst: 2, window: time.Minute}
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
		ok, n := l.allow(t0.Add(want.at))
		if ok != want.ok || n != want.suppressed {
			t.Errorf("call %d at +%s: %v, %d; want %v, %d", i, want.at, ok, n, want.ok, want.suppressed)
		}
	}
}

// TestAuthFloodIsThrottledInTheLog sends more refused requests than the log
// takes: every one is refused and counted, only a burst is logged.
func TestAuthFloodIsThrottledInTheLog(t *testing.T) {
	f := newFixture(t, Options{})
	before := f.metric(t, "osgate_rpc_auth_failures_total")
	n := authLogBurst + 10
	for range n {
		rep := f.post(t, "POST", "/rpc", "application/json", "Bearer nope", strings.NewReader(addCall))
		if rep.status != http.StatusUnauthorized {
			t.Fatalf("HTTP %d, want 401", rep.status)
		}
	}
	if got := f.metric(t, "osgate_rpc_auth_failures_total") - before; got != float64(n) {
		t.Errorf("counted %v refusals, want %d", got, n)
	}
	lines := strings.Count(f.logs.String(), "request refused")
	// The window is a minute: on a very slow machine it may roll over once.
	if lines < authLogBurst || lines > 2*authLogBurst || lines == n {
		t.Errorf("%d refusals logged %d lines; want about %d", n, lines, authLogBurst)
	}
}
