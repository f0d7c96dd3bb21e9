package appliance

import (
	"testing"
	"time"
)

// TestNextDue: the next poll keeps to the grid of the previous one's due
// time; a poll that ran past the next one's time runs that one at once if
// it is at most half an interval overdue, and otherwise skips to the next
// time on the grid, counting the polls skipped.
func TestNextDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	for _, c := range []struct {
		ended      time.Duration // after t0, when the poll due at t0 ended
		due        time.Duration // after t0
		wantMissed int64
	}{
		{5 * ms, 100 * ms, 0},
		{99 * ms, 100 * ms, 0},
		{100 * ms, 100 * ms, 0},
		{150 * ms, 100 * ms, 0}, // half an interval overdue: late, not missed
		{151 * ms, 200 * ms, 1},
		{420 * ms, 400 * ms, 3},
		{460 * ms, 500 * ms, 4},
		{10*time.Second + 30*ms, 10 * time.Second, 99},
	} {
		due, missed := nextDue(t0, 100*ms, t0.Add(c.ended))
		if got := due.Sub(t0); got != c.due || missed != c.wantMissed {
			t.Errorf("poll ended after %v: next due after %v with %d missed, want %v with %d", c.ended, got, missed, c.due, c.wantMissed)
		}
	}
}
