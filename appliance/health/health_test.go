package health

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// clock is a settable clock for the model.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newModel(c *clock, grace time.Duration) *Model {
	m := New(grace)
	m.SetClock(c.now)
	return m
}

func TestExportStates(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Minute)
	if r := m.Report(); r.Status != OK {
		t.Fatalf("fresh model %v: %v", r.Status, r.Reasons)
	}
	c.advance(2 * time.Minute)
	if r := m.Report(); r.Status != Unhealthy || !strings.Contains(r.Reasons[0], "never connected") {
		t.Fatalf("export never connected: %+v", r)
	}
	m.Export(true, 0, 100)
	if r := m.Report(); r.Status != OK || !r.Export.Connected {
		t.Fatalf("connected: %+v", r)
	}
	m.Export(false, 10, 100)
	if r := m.Report(); r.Status != Degraded {
		t.Fatalf("briefly disconnected: %+v", r)
	}
	c.advance(61 * time.Second)
	m.Export(false, 20, 100) // the since of the outage is kept
	if r := m.Report(); r.Status != Unhealthy {
		t.Fatalf("disconnected past grace: %+v", r)
	}
	m.Export(true, 100, 100)
	if r := m.Report(); r.Status != Unhealthy || !strings.Contains(strings.Join(r.Reasons, ";"), "queue full") {
		t.Fatalf("queue full: %+v", r)
	}
}

func TestConnectors(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Hour)
	m.Export(true, 0, 100)
	m.AddConnector("a", 10*time.Second)
	m.AddConnector("b", 10*time.Second)
	if r := m.Report(); r.Status != OK {
		t.Fatalf("starting connectors: %+v", r)
	}
	m.Success("a")
	m.Failure("b", errors.New("timeout"))
	r := m.Report()
	if r.Status != Degraded || r.Connectors[0].OK != true || r.Connectors[1].OK || r.Connectors[1].LastError != "timeout" {
		t.Fatalf("one failing: %+v", r)
	}
	c.advance(31 * time.Second) // a's success is now older than 3 intervals
	// Every connector failing is the field's trouble: degraded, so the
	// watchdog does not restart the gateway; a trial fails on it.
	r = m.Report()
	if r.Status != Degraded || !strings.Contains(strings.Join(r.Reasons, ";"), "every connector") {
		t.Fatalf("all stale: %+v", r)
	}
	if why := r.TrialFailure(); why != "every connector is failing" {
		t.Fatalf("all stale: trial failure %q", why)
	}
	m.Success("a")
	m.Success("b")
	if r := m.Report(); r.Status != OK || r.TrialFailure() != "" {
		t.Fatalf("recovered: %+v", r)
	}
	m.RemoveConnector("b")
	if r := m.Report(); len(r.Connectors) != 1 {
		t.Fatalf("removed: %+v", r)
	}
}

func TestHeartbeats(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Hour)
	m.Export(true, 0, 100)
	m.Watch("poll x", time.Second)
	c.advance(500 * time.Millisecond)
	m.Beat("poll x")
	c.advance(900 * time.Millisecond)
	if r := m.Report(); !r.Live {
		t.Fatalf("beaten in time: %+v", r)
	}
	c.advance(200 * time.Millisecond)
	if r := m.Report(); r.Live || r.Status != Unhealthy {
		t.Fatalf("stale beat: %+v", r)
	}
	m.Unwatch("poll x")
	if r := m.Report(); !r.Live {
		t.Fatalf("unwatched: %+v", r)
	}
}

// TestListenerConnector: a connector that only listens is never stale, only
// failing between a failure and the next success.
func TestListenerConnector(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Hour)
	m.Export(true, 0, 100)
	m.AddConnector("mqtt", 0)
	c.advance(24 * time.Hour)
	if r := m.Report(); r.Status != OK {
		t.Fatalf("silent listener: %+v", r)
	}
	m.Failure("mqtt", errors.New("broker unreachable"))
	if r := m.Report(); r.Status != Degraded || r.TrialFailure() == "" {
		t.Fatalf("failed listener, the only connector: %+v", r)
	}
	c.advance(time.Second)
	m.Success("mqtt")
	if r := m.Report(); r.Status != OK {
		t.Fatalf("recovered listener: %+v", r)
	}
}

func TestDisk(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Hour)
	m.Export(true, 0, 100)
	m.Disk("/perm/osgate", 200<<20, 128<<20, false)
	if r := m.Report(); r.Status != OK || r.Disk == nil || r.Disk.FreeBytes != 200<<20 {
		t.Fatalf("room on disk: %+v", r)
	}
	m.Disk("/perm/osgate", 5<<20+1<<19, 128<<20, false)
	if r := m.Report(); r.Status != Degraded || len(r.Reasons) != 1 ||
		r.Reasons[0] != "disk space low: 5.5 MiB free in /perm/osgate, below gateway.disk_warn_bytes (128.0 MiB)" {
		t.Fatalf("low on disk: %+v", r)
	}
	m.Disk("/perm/osgate", 0, 128<<20, true)
	if r := m.Report(); r.Status != Degraded || len(r.Reasons) != 1 ||
		r.Reasons[0] != "disk full: readings cannot be stored in /perm/osgate (0 B free); make room there" || !r.Disk.Full {
		t.Fatalf("disk full: %+v", r)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3<<19 + 0: "1.5 MiB", 128 << 20: "128.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestDevices: offline devices degrade the report and are named (up to a
// bound); degraded, unknown and disabled ones are counted only; even
// every device offline never makes the gateway unhealthy.
func TestDevices(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	m := newModel(c, time.Hour)
	m.Export(true, 0, 100)
	m.SetDevice("m1", Device{Connector: "rtu", State: DeviceOnline, Since: c.t})
	m.SetDevice("m2", Device{Connector: "rtu", State: DeviceDegraded, Since: c.t, Reason: "1 of 2 channels failed"})
	m.SetDevice("m3", Device{Connector: "rtu", State: DeviceDisabled, Since: c.t})
	m.SetDevice("m4", Device{Connector: "rtu", State: DeviceUnknown, Since: c.t})
	r := m.Report()
	if r.Status != OK || len(r.Reasons) != 0 {
		t.Fatalf("no device offline: %+v", r)
	}
	want := map[DeviceState]int{DeviceOnline: 1, DeviceDegraded: 1, DeviceDisabled: 1, DeviceUnknown: 1}
	if fmt.Sprint(r.Devices) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", r.Devices, want)
	}
	m.SetDevice("m1", Device{Connector: "rtu", State: DeviceOffline, Since: c.t, Reason: "timeout", Failures: 3})
	r = m.Report()
	if r.Status != Degraded || len(r.Reasons) != 1 || r.Reasons[0] != "device m1 offline since 2026-11-25T12:00:00Z: timeout" {
		t.Fatalf("one offline: %+v", r)
	}
	if r.TrialFailure() != "" {
		t.Fatalf("an offline device fails a trial: %q", r.TrialFailure())
	}
	for i := range 15 {
		m.SetDevice(fmt.Sprintf("x%02d", i), Device{State: DeviceOffline, Since: c.t})
	}
	r = m.Report()
	if r.Status != Degraded || r.Devices[DeviceOffline] != 16 || len(r.Reasons) != 11 ||
		!strings.HasPrefix(r.Reasons[0], "device m1 offline") || r.Reasons[10] != "6 more devices offline (see devices.list)" {
		t.Fatalf("sixteen offline: %+v", r)
	}
	m.RemoveDevice("m1")
	if r := m.Report(); r.Devices[DeviceOffline] != 15 {
		t.Fatalf("removed: %+v", r.Devices)
	}
}
