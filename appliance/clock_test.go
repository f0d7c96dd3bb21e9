package appliance

import (
	"errors"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// TestClockGateHoldsUntilSet plays a Raspberry Pi booting in 1970: readings
// taken then are held, and once NTP sets the clock they come out stamped
// with their real age and quality uncertain, never with a 1970 time.
func TestClockGateHoldsUntilSet(t *testing.T) {
	wall := time.Unix(60, 0) // 1970-01-01T00:01:00Z
	c := &clockGate{now: func() time.Time { return wall }}
	if c.set() {
		t.Fatal("1970 counts as set")
	}
	rs := []core.Reading{
		{Device: "d", Channel: "a", Value: 1.0, Time: wall, Quality: core.Good},
		{Device: "d", Channel: "b", Time: wall, Quality: core.Bad, Err: errors.New("timeout")},
	}
	if !c.hold(nil, "d", rs) {
		t.Fatal("hold refused")
	}
	rs[0].Value = 99.0 // the caller reuses its slice: the hold must have copied
	if got := c.release(); got != nil {
		t.Fatalf("released before the clock was set: %v", got)
	}
	wall = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	got := c.release()
	if len(got) != 1 || len(got[0].readings) != 2 {
		t.Fatalf("released %v", got)
	}
	for _, r := range got[0].readings {
		if r.Time.Before(clockFloor) || r.Time.After(wall) {
			t.Errorf("%s re-stamped %v", r.Channel, r.Time)
		}
	}
	if r := got[0].readings[0]; r.Quality != core.Uncertain || r.Value != 1.0 {
		t.Errorf("good reading became %+v", r)
	}
	if r := got[0].readings[1]; r.Quality != core.Bad {
		t.Errorf("bad reading became %+v", r)
	}
	if c.pending() != 0 || c.release() != nil {
		t.Error("released twice")
	}
}

func TestClockGateBounded(t *testing.T) {
	c := &clockGate{now: func() time.Time { return time.Unix(0, 0) }}
	r := []core.Reading{{Device: "d", Channel: "a", Value: 1.0}}
	for i := 0; i < maxHeld; i++ {
		if !c.hold(nil, "d", r) {
			t.Fatalf("hold %d refused", i)
		}
	}
	if c.hold(nil, "d", r) {
		t.Fatal("hold beyond maxHeld accepted")
	}
	// Few batches of many readings are bounded too.
	c = &clockGate{now: func() time.Time { return time.Unix(0, 0) }}
	big := make([]core.Reading, maxHeldReadings/4)
	for i := range 4 {
		if !c.hold(nil, "d", big) {
			t.Fatalf("hold %d of %d readings refused", i, len(big))
		}
	}
	if c.hold(nil, "d", r) {
		t.Fatal("hold beyond maxHeldReadings accepted")
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	d := &devRun{dev: &core.Device{Interval: time.Second}}
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		d.st.failures = n
		b := d.backoff()
		base := min(time.Second<<(n-1), maxBackoff)
		if b < base*9/10 || b > base*11/10 {
			t.Fatalf("failures=%d: backoff %v, want %v ±10%%", n, b, base)
		}
		if n > 1 && b < prev*8/10 {
			t.Fatalf("backoff shrank: %v after %v", b, prev)
		}
		prev = b
	}
	// A device polled less often than maxBackoff backs off at its interval.
	d = &devRun{dev: &core.Device{Interval: 5 * time.Minute}, st: devState{failures: 4}}
	if b := d.backoff(); b < 270*time.Second || b > 330*time.Second {
		t.Fatalf("slow device backoff %v", b)
	}
}
