package health

import (
	"errors"
	"testing"
	"time"
)

// told reports whether the model told of a change since the last call.
func told(m *Model) bool {
	select {
	case <-m.Changes():
		return true
	default:
		return false
	}
}

// TestChangesTellNewsOnly: the model tells of what may change its
// judgement and keeps quiet about routine news, so that a reader waiting
// on Changes sleeps while the gateway is steady.
func TestChangesTellNewsOnly(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Minute)
	told(m)
	steps := []struct {
		what string
		do   func()
		news bool
	}{
		{"a connector added", func() { m.AddConnector("c", 10*time.Second) }, true},
		{"its first success", func() { m.Success("c") }, true},
		{"another success", func() { c.advance(10 * time.Second); m.Success("c") }, false},
		{"a failure", func() { c.advance(time.Second); m.Failure("c", errors.New("timeout")) }, true},
		{"the same failure again", func() { c.advance(time.Second); m.Failure("c", errors.New("timeout")) }, false},
		{"another failure", func() { c.advance(time.Second); m.Failure("c", errors.New("refused")) }, true},
		{"a success after failing", func() { c.advance(time.Second); m.Success("c") }, true},
		{"a success after going stale", func() { c.advance(31 * time.Second); m.Success("c") }, true},
		{"the export connects", func() { m.Export(true, 0, 100) }, true},
		{"its queue moves", func() { m.Export(true, 5, 100) }, false},
		{"its queue fills", func() { m.Export(true, 100, 100) }, true},
		{"it disconnects", func() { m.Export(false, 0, 100) }, true},
		{"the disk first measured", func() { m.Disk("/perm", 1000, 100, false) }, true},
		{"less free, above the threshold", func() { m.Disk("/perm", 900, 100, false) }, false},
		{"below the threshold", func() { m.Disk("/perm", 90, 100, false) }, true},
		{"full", func() { m.Disk("/perm", 0, 100, true) }, true},
		{"the broker fails", func() { m.Broker(errors.New("exit 1")) }, true},
		{"the broker fails alike", func() { m.Broker(errors.New("exit 1")) }, false},
		{"the broker runs", func() { m.Broker(nil) }, true},
		{"a device's state", func() { m.SetDevice("d", Device{Connector: "c", State: DeviceOnline}) }, true},
		{"the same state", func() { m.SetDevice("d", Device{Connector: "c", State: DeviceOnline}) }, false},
		{"a device removed", func() { m.RemoveDevice("d") }, true},
		{"a loop watched", func() { m.Watch("poll c/d", time.Second) }, false},
		{"its beat", func() { m.Beat("poll c/d") }, false},
		{"its beat after it was stuck", func() { c.advance(2 * time.Second); m.Beat("poll c/d") }, true},
	}
	for _, s := range steps {
		s.do()
		if got := told(m); got != s.news {
			t.Errorf("%s: told %v, want %v", s.what, got, s.news)
		}
	}
}

// TestNextIsWhenTimeAloneChangesTheJudgement: Report.Next is when the
// report would judge otherwise with nothing told meanwhile, and a report
// made then does.
func TestNextIsWhenTimeAloneChangesTheJudgement(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Minute)
	m.Export(true, 0, 100)
	m.AddConnector("c", 10*time.Second)
	m.Success("c")
	r := m.Report()
	if want := c.t.Add(30*time.Second + time.Millisecond); !r.Next.Equal(knob(c, want)) || r.Status != OK {
		t.Fatalf("next %v (status %s), want %v: the connector goes stale 3 intervals after its success", r.Next, r.Status, want)
	}
	c.t = c.t.Add(30*time.Second + time.Millisecond)
	if r = m.Report(); r.Status != Degraded {
		t.Fatalf("at Next: %s %v, want degraded", r.Status, r.Reasons)
	}
	if !r.Next.Equal(knob(c, time.Time{})) {
		t.Fatalf("a stale connector and nothing else due: next %v", r.Next)
	}

	m.Export(false, 0, 100)
	r = m.Report()
	if want := c.t.Add(time.Minute + time.Millisecond); !r.Next.Equal(knob(c, want)) {
		t.Fatalf("next %v, want %v: the export's grace runs out", r.Next, want)
	}
	c.t = c.t.Add(time.Minute + time.Millisecond)
	if r = m.Report(); r.Status != Unhealthy {
		t.Fatalf("at Next: %s %v, want unhealthy", r.Status, r.Reasons)
	}

	// A loop watched after the last report, stale at the next one: the
	// report tells, since nobody knew its deadline.
	m.Watch("poll c/d", time.Second)
	told(m)
	c.advance(2 * time.Second)
	if r = m.Report(); r.Live || !told(m) {
		t.Fatalf("a stuck loop: live %v, and told %v", r.Live, false)
	}
	m.Report()
	if told(m) {
		t.Fatal("the same stuck loop told again")
	}
}

// knob is want as Next has it in a build with the test knob (tag
// testhook), which must be looked at again within knobLook: the earlier
// of the two.
func knob(c *clock, want time.Time) time.Time {
	if knobLook == 0 {
		return want
	}
	k := c.t.Add(knobLook + time.Millisecond)
	if want.IsZero() || k.Before(want) {
		return k
	}
	return want
}
