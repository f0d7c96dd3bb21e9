package appliance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/drivers/core"
)

func TestJudge(t *testing.T) {
	good := core.Reading{Channel: "a", Value: 1.0}
	bad := func(ch string, msg string) core.Reading {
		return core.BadReading("d", ch, time.Time{}, errors.New(msg))
	}
	for _, c := range []struct {
		name   string
		rs     []core.Reading
		err    error
		state  health.DeviceState
		failed bool
		reason string
	}{
		{"all good", []core.Reading{good, good}, nil, health.DeviceOnline, false, ""},
		{"nothing new (reported on their own)", nil, nil, health.DeviceOnline, false, ""},
		{"uncertain is not bad", []core.Reading{{Channel: "a", Quality: core.Uncertain}}, nil, health.DeviceOnline, false, ""},
		{"one bad", []core.Reading{good, bad("b", "exception 2")}, nil, health.DeviceDegraded, false, "1 of 2 channels failed; b: exception 2"},
		{"every one bad", []core.Reading{bad("a", "timeout"), bad("b", "not asked")}, nil, health.DeviceOffline, true, "every channel failed (2); a: timeout"},
		{"the only one bad", []core.Reading{bad("a", "timeout")}, nil, health.DeviceOffline, true, "its one channel failed; a: timeout"},
		{"bad without error", []core.Reading{{Channel: "a", Quality: core.Bad}}, nil, health.DeviceOffline, true, "its one channel failed; a: bad"},
		{"unreachable", nil, errors.New("connection refused"), health.DeviceOffline, true, "connection refused"},
		{"long reason clipped", nil, errors.New(strings.Repeat("é", 400)), health.DeviceOffline, true, strings.Repeat("é", 150) + "…"},
	} {
		o := judge(c.rs, c.err)
		if o.state != c.state || o.failed != c.failed || o.reason != c.reason || (o.failed && o.err == nil) {
			t.Errorf("%s: %+v, want %s failed=%v %q", c.name, o, c.state, c.failed, c.reason)
		}
	}
	var ab *allBadError
	if o := judge([]core.Reading{bad("a", "timeout")}, nil); !errors.As(o.err, &ab) || errors.Unwrap(o.err).Error() != "timeout" {
		t.Errorf("every channel bad: err %v", o.err)
	}
}

func TestDevStateApplyAndSilence(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s := devState{state: health.DeviceUnknown, since: t0}
	offline := judge(nil, errors.New("timeout"))
	if c, ok := s.apply(offline, t0.Add(time.Second)); !ok || c.from != health.DeviceUnknown || s.state != health.DeviceOffline || s.failures != 1 || !s.since.Equal(t0.Add(time.Second)) {
		t.Fatalf("first failure: %+v %+v", c, s)
	}
	if _, ok := s.apply(judge(nil, errors.New("refused")), t0.Add(2*time.Second)); ok || s.failures != 2 || s.reason != "timeout" || s.lastErr.Error() != "refused" {
		t.Fatalf("still offline: the state's reason stays, the last error moves: %+v", s)
	}
	if c, ok := s.apply(judge(nil, nil), t0.Add(3*time.Second)); !ok || c.after != 2 || s.failures != 0 || s.lastErr != nil || s.reason != "" || !s.lastOK.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("back: %+v %+v", c, s)
	}
	// Silence: a device that reports on its own, interval 10 s.
	started := t0
	if _, ok := s.silent(10*time.Second, started, t0.Add(13*time.Second)); ok {
		t.Fatalf("silent for exactly its interval is not yet offline: %+v", s)
	}
	if _, ok := s.silent(10*time.Second, started, t0.Add(13*time.Second+time.Millisecond)); !ok || s.state != health.DeviceOffline ||
		!s.since.Equal(t0.Add(13*time.Second)) || s.reason != "no report since 2026-11-25T12:00:03Z (interval 10s)" {
		t.Fatalf("silent past its interval: %+v", s)
	}
	n := devState{state: health.DeviceUnknown, since: t0}
	if _, ok := n.silent(10*time.Second, started, t0.Add(11*time.Second)); !ok || n.reason != "no report since the connector started (interval 10s)" {
		t.Fatalf("never reported: %+v", n)
	}
	d := devState{state: health.DeviceDisabled}
	if _, ok := d.silent(time.Second, started, t0.Add(time.Hour)); ok {
		t.Fatal("a disabled device went offline")
	}
}
