package appliance

import (
	"testing"
	"time"
)

// TestNextDue: the next poll keeps to the grid of the previous one's due
// time. A poll that ran past the next one's time runs that one at once as
// long as it is less than a whole interval overdue (it can still start
// before its successor is due): late, not missed. Further behind, only
// the latest time on the grid that has passed runs, at once, and the
// polls due before it are counted missed (never more than one catches up).
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
		{101 * ms, 100 * ms, 0},
		{150 * ms, 100 * ms, 0}, // half an interval overdue: late, not missed
		{151 * ms, 100 * ms, 0}, // more than half: still before its successor's time
		{199 * ms, 100 * ms, 0},
		{200*ms - 1, 100 * ms, 0},
		{200 * ms, 200 * ms, 1}, // a whole interval overdue: missed, the next runs at once
		{260 * ms, 200 * ms, 1},
		{420 * ms, 400 * ms, 3},
		{460 * ms, 400 * ms, 3},
		{499 * ms, 400 * ms, 3},
		{10*time.Second + 30*ms, 10 * time.Second, 99},
		{10*time.Second + 99*ms, 10 * time.Second, 99},
	} {
		due, missed := nextDue(t0, 100*ms, t0.Add(c.ended))
		if got := due.Sub(t0); got != c.due || missed != c.wantMissed {
			t.Errorf("poll ended after %v: next due after %v with %d missed, want %v with %d", c.ended, got, missed, c.due, c.wantMissed)
		}
		// The poll that runs at once is less than an interval overdue:
		// one catches up, not a burst of them.
		if c.ended-due.Sub(t0) >= 100*ms {
			t.Errorf("poll ended after %v: next due after %v, a whole interval or more overdue", c.ended, due.Sub(t0))
		}
	}
}
