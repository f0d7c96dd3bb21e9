package rpc

import (
	"net/http"
	"strings"
	"testing"
)

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
