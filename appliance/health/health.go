// Package health is osgate's one health model. The export sink reports
// whether it is connected and how full its queue is, each connector reports
// its successes and failures, each configured device its state (online,
// degraded, offline, disabled), and the long-running loops (scheduler,
// pipeline) beat a heartbeat. /healthz, metrics, the watchdog, config
// auto-revert and OTA confirmation all read Report; none keeps its own.
//
// Unhealthy means the gateway itself is broken (export down past its
// grace, queue full, a loop stuck): restarting it may help, and the
// watchdog lets its supervisor do so. Devices that do not answer and
// connectors that fail are the field's trouble, not the gateway's: they
// make it degraded, never unhealthy, so a dead meter cannot put the
// gateway into a restart loop. A configuration or release on trial is
// judged more strictly (see TrialFailure).
package health

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is the verdict of a Report.
type Status string

const (
	// OK: exporting, every connector succeeding, every loop alive.
	OK Status = "ok"
	// Degraded: working, but some devices are offline, some connectors
	// fail (or all of them), or export is queueing within its limits.
	Degraded Status = "degraded"
	// Unhealthy: export down past its grace or queue full, or a loop
	// stopped making progress.
	Unhealthy Status = "unhealthy"
)

// DeviceState is what the gateway knows of a configured device.
type DeviceState string

const (
	// DeviceUnknown: not polled, or not heard from, since the connector
	// started.
	DeviceUnknown DeviceState = "unknown"
	// DeviceOnline: the last poll (or report) read every channel.
	DeviceOnline DeviceState = "online"
	// DeviceDegraded: the last poll read some channels; others failed.
	DeviceDegraded DeviceState = "degraded"
	// DeviceOffline: the last poll failed, or every channel of it did, or
	// a device that reports on its own stayed silent past its interval.
	DeviceOffline DeviceState = "offline"
	// DeviceDisabled: its connector is disabled in the configuration.
	DeviceDisabled DeviceState = "disabled"
)

// DeviceStates lists every state, in the order reports count them.
var DeviceStates = []DeviceState{DeviceOnline, DeviceDegraded, DeviceOffline, DeviceDisabled, DeviceUnknown}

// Device is a configured device's state as the model holds it.
type Device struct {
	Connector string
	State     DeviceState
	Since     time.Time
	Reason    string
	Failures  int
}

// Model is the gateway's health. The zero value is not usable; use New.
type Model struct {
	mu         sync.Mutex
	now        func() time.Time
	started    time.Time
	exportDown time.Duration // grace before a disconnected export is unhealthy
	export     exportState
	disk       *DiskReport
	broker     error // why the managed broker does not run, or nil
	connectors map[string]*connState
	devices    map[string]Device // configured devices only: bounded by the config
	beats      map[string]*beat
	// changed is told (capacity 1) when the judgement may have changed
	// by something the model was told (see Changes).
	changed chan struct{}
}

type exportState struct {
	known     bool
	connected bool
	since     time.Time // of the current connected/disconnected state
	queued    int
	limit     int
}

type connState struct {
	interval time.Duration
	added    time.Time
	lastOK   time.Time
	lastErr  error
	errAt    time.Time
}

type beat struct {
	max  time.Duration
	last time.Time
	// stale: a report found it stale and told (Changes); a beat clears it.
	stale bool
}

// New returns a Model; exportGrace is how long export may be disconnected
// (queueing) before the gateway counts as unhealthy.
func New(exportGrace time.Duration) *Model {
	return &Model{
		now:        time.Now,
		started:    time.Now(),
		exportDown: exportGrace,
		connectors: map[string]*connState{},
		devices:    map[string]Device{},
		beats:      map[string]*beat{},
		changed:    make(chan struct{}, 1),
	}
}

// Changes is told when a report may judge differently because of what
// the model was told: a connector, device, the export, the disk or the
// broker changed state. A report's Next says when it may change with time
// alone. Routine news that changes nothing (another success of a healthy
// connector, a heartbeat of a live loop, new free-space figures on the same
// side of the threshold) says nothing, so that a reader who waits on both
// sleeps while the gateway is steady.
func (m *Model) Changes() <-chan struct{} { return m.changed }

// tell says the judgement may have changed (m.mu held or not).
func (m *Model) tell() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// SetClock replaces the clock (tests).
func (m *Model) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.started = now()
	m.mu.Unlock()
}

// Export records the export sink's state.
func (m *Model) Export(connected bool, queued, limit int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	full := func(e exportState) bool { return e.limit > 0 && e.queued >= e.limit }
	if !m.export.known || m.export.connected != connected || full(m.export) != full(exportState{queued: queued, limit: limit}) {
		m.tell()
	}
	if !m.export.known || m.export.connected != connected {
		m.export.since = m.now()
	}
	m.export.known = true
	m.export.connected = connected
	m.export.queued = queued
	m.export.limit = limit
}

// Disk records the state dir's file system: dir, its free bytes, the
// warning threshold below which the gateway is degraded, and whether
// writes are being refused for lack of space (full). Neither is
// unhealthy: a restart or a rollback would not make room.
func (m *Model) Disk(dir string, free, warn uint64, full bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.disk; d == nil || d.Dir != dir || d.Full != full || (d.FreeBytes < d.WarnBytes) != (free < warn) {
		m.tell()
	}
	m.disk = &DiskReport{Dir: dir, FreeBytes: free, WarnBytes: warn, Full: full}
}

// Broker records the managed broker's state: nil while it runs, else why
// it does not (the gateway goes on, its readings wait in the export spool).
func (m *Model) Broker(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if (m.broker == nil) != (err == nil) || err != nil && m.broker.Error() != err.Error() {
		m.tell()
	}
	m.broker = err
}

// AddConnector starts tracking a connector whose devices are due every
// interval (the shortest of them). An interval of 0 is a connector that is
// only told of (a listener whose devices report when they like): it counts
// as failing only while its last failure is newer than its last success.
func (m *Model) AddConnector(name string, interval time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.connectors[name] = &connState{interval: interval, added: m.now()}
	m.tell()
}

// RemoveConnector stops tracking a connector.
func (m *Model) RemoveConnector(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.connectors, name)
	m.tell()
}

// Success records that a connector delivered readings.
func (m *Model) Success(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.connectors[name]; c != nil {
		now := m.now()
		// News only when it was failing, or had not succeeded yet, or
		// was stale (its OK ran out with time).
		if c.lastOK.IsZero() || c.errAt.After(c.lastOK) || c.interval > 0 && now.Sub(c.lastOK) > staleAfter*c.interval {
			m.tell()
		}
		c.lastOK = now
	}
}

// Failure records that a connector failed (a device unreachable, a listener
// that returned).
func (m *Model) Failure(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.connectors[name]; c != nil {
		if !c.errAt.After(c.lastOK) || c.lastErr == nil || err == nil || c.lastErr.Error() != err.Error() {
			m.tell() // it was not failing, or fails otherwise now
		}
		c.lastErr = err
		c.errAt = m.now()
	}
}

// SetDevice records a configured device's state.
func (m *Model) SetDevice(name string, d Device) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.devices[name]; !ok || old != d {
		m.tell()
	}
	m.devices[name] = d
}

// RemoveDevice stops tracking a device (its connector stopped).
func (m *Model) RemoveDevice(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.devices, name)
	m.tell()
}

// Watch registers a heartbeat that must beat at least every max.
func (m *Model) Watch(name string, max time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beats[name] = &beat{max: max, last: m.now()}
}

// Unwatch removes a heartbeat.
func (m *Model) Unwatch(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.beats, name)
}

// Beat records progress of a watched loop.
func (m *Model) Beat(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.beats[name]; b != nil {
		now := m.now()
		if b.stale || now.Sub(b.last) > b.max {
			m.tell() // it was stuck
		}
		b.last, b.stale = now, false
	}
}

// Report is a snapshot of the model.
type Report struct {
	Status  Status       `json:"status"`
	Reasons []string     `json:"reasons,omitempty"`
	Live    bool         `json:"live"` // every heartbeat fresh
	Uptime  string       `json:"uptime"`
	Export  ExportReport `json:"export"`
	Disk    *DiskReport  `json:"disk,omitempty"`
	// Broker says why the managed broker does not run (empty while it runs).
	Broker     string            `json:"broker,omitempty"`
	Connectors []ConnectorReport `json:"connectors"`
	// Devices counts the configured devices by state; only states that
	// some device is in appear.
	Devices map[DeviceState]int `json:"devices"`
	// Next is when this judgement may next change with time alone, with
	// nothing told to the model meanwhile (a connector or a loop going
	// stale, the export's grace running out); zero: not by time alone.
	Next time.Time `json:"-"`
}

// TrialFailure says why a configuration or a release on trial should be
// rolled back, or "" if it may stay: the gateway is unhealthy, or nothing
// works at all (every connector failing, e.g. a wrong serial port in every
// connector). It is stricter than Status, which calls the latter degraded
// so that dead field devices never restart the gateway.
func (r Report) TrialFailure() string {
	if r.Status == Unhealthy {
		return strings.Join(r.Reasons, "; ")
	}
	if r.everyConnectorFailing() {
		return everyConnectorFailing
	}
	return ""
}

const everyConnectorFailing = "every connector is failing"

func (r Report) everyConnectorFailing() bool {
	for _, c := range r.Connectors {
		if c.OK {
			return false
		}
	}
	return len(r.Connectors) > 0
}

// DiskReport is the state dir's file system in a Report.
type DiskReport struct {
	Dir       string `json:"dir"`
	FreeBytes uint64 `json:"free_bytes"`
	WarnBytes uint64 `json:"warn_bytes"`
	// Full: writes of the export spool fail for lack of space.
	Full bool `json:"full"`
}

// ExportReport is the export part of a Report.
type ExportReport struct {
	Connected bool   `json:"connected"`
	Since     string `json:"since,omitempty"`
	Queued    int    `json:"queued"`
	Limit     int    `json:"limit"`
	// Oldest is the time of the oldest reading not yet safe in the broker
	// (gateway.status fills it in from the export; /healthz has none).
	Oldest string `json:"oldest,omitempty"`
}

// ConnectorReport is one connector's part of a Report.
type ConnectorReport struct {
	Name      string `json:"name"`
	OK        bool   `json:"ok"`
	LastOK    string `json:"last_ok,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// staleAfter is how many intervals a connector may go without success.
const staleAfter = 3

// maxDeviceReasons bounds the devices a report names; the rest are
// counted in one more reason.
const maxDeviceReasons = 10

// Report judges the model now.
func (m *Model) Report() Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	r := Report{Status: OK, Live: true, Uptime: now.Sub(m.started).Round(time.Second).String()}
	worse := func(s Status, reason string) {
		r.Reasons = append(r.Reasons, reason)
		if s == Unhealthy || r.Status == OK {
			r.Status = s
		}
	}
	// until notes a time at which the judgement changes by itself: just
	// past at, where "more than" holds.
	until := func(at time.Time) {
		at = at.Add(time.Millisecond)
		if r.Next.IsZero() || at.Before(r.Next) {
			r.Next = at
		}
	}
	names := make([]string, 0, len(m.beats))
	for n := range m.beats {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := m.beats[n]
		if age := now.Sub(b.last); age > b.max {
			r.Live = false
			worse(Unhealthy, fmt.Sprintf("%s made no progress for %s", n, age.Round(100*time.Millisecond)))
			if !b.stale {
				// A loop watched after the last report went stale:
				// whoever waits on Changes did not know its deadline.
				b.stale = true
				m.tell()
			}
		} else {
			until(b.last.Add(b.max))
		}
	}
	if why := testKnob(); why != "" {
		worse(Unhealthy, why)
	}
	if knobLook > 0 {
		until(now.Add(knobLook))
	}
	if m.broker != nil {
		r.Broker = m.broker.Error()
		worse(Degraded, "managed broker not running: "+r.Broker)
	}
	e := m.export
	r.Export = ExportReport{Connected: e.connected, Queued: e.queued, Limit: e.limit}
	if e.known {
		r.Export.Since = e.since.UTC().Format(time.RFC3339)
		switch {
		case e.limit > 0 && e.queued >= e.limit:
			worse(Unhealthy, fmt.Sprintf("export queue full (%d messages)", e.queued))
		case !e.connected && now.Sub(e.since) > m.exportDown:
			worse(Unhealthy, fmt.Sprintf("export broker unreachable for %s", now.Sub(e.since).Round(time.Second)))
		case !e.connected:
			worse(Degraded, fmt.Sprintf("export broker unreachable, %d messages queued", e.queued))
			until(e.since.Add(m.exportDown))
		}
	} else if now.Sub(m.started) > m.exportDown {
		worse(Unhealthy, "export never connected")
	} else {
		until(m.started.Add(m.exportDown))
	}
	if d := m.disk; d != nil {
		r.Disk = new(DiskReport)
		*r.Disk = *d
		switch {
		case d.Full:
			worse(Degraded, fmt.Sprintf("disk full: readings cannot be stored in %s (%s free); make room there", d.Dir, Bytes(d.FreeBytes)))
		case d.FreeBytes < d.WarnBytes:
			worse(Degraded, fmt.Sprintf("disk space low: %s free in %s, below gateway.disk_warn_bytes (%s)", Bytes(d.FreeBytes), d.Dir, Bytes(d.WarnBytes)))
		}
	}
	cnames := make([]string, 0, len(m.connectors))
	for n := range m.connectors {
		cnames = append(cnames, n)
	}
	sort.Strings(cnames)
	failing := 0
	for _, n := range cnames {
		c := m.connectors[n]
		cr := ConnectorReport{Name: n}
		if c.interval == 0 {
			cr.OK = !c.errAt.After(c.lastOK)
		} else {
			stale := staleAfter * c.interval
			fresh := !c.lastOK.IsZero() && now.Sub(c.lastOK) <= stale
			starting := c.lastOK.IsZero() && c.errAt.IsZero() && now.Sub(c.added) <= stale
			cr.OK = fresh || starting
			switch {
			case fresh:
				until(c.lastOK.Add(stale))
			case starting:
				until(c.added.Add(stale))
			}
		}
		if !c.lastOK.IsZero() {
			cr.LastOK = c.lastOK.UTC().Format(time.RFC3339Nano)
		}
		if c.lastErr != nil && c.errAt.After(c.lastOK) {
			cr.LastError = c.lastErr.Error()
		}
		if !cr.OK {
			failing++
			worse(Degraded, fmt.Sprintf("connector %s failing", n))
		}
		r.Connectors = append(r.Connectors, cr)
	}
	if failing > 0 && failing == len(cnames) {
		worse(Degraded, everyConnectorFailing)
	}
	m.reportDevices(&r, worse)
	return r
}

// Bytes formats a size for people: "512 B", "3.5 MiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// reportDevices counts the devices by state and names the offline ones
// (at most maxDeviceReasons), which make the report degraded.
func (m *Model) reportDevices(r *Report, worse func(Status, string)) {
	r.Devices = map[DeviceState]int{}
	var offline []string
	for n, d := range m.devices {
		r.Devices[d.State]++
		if d.State == DeviceOffline {
			offline = append(offline, n)
		}
	}
	sort.Strings(offline)
	for i, n := range offline {
		if i == maxDeviceReasons {
			worse(Degraded, fmt.Sprintf("%d more devices offline (see devices.list)", len(offline)-i))
			break
		}
		d := m.devices[n]
		reason := fmt.Sprintf("device %s offline since %s", n, d.Since.UTC().Format(time.RFC3339))
		if d.Reason != "" {
			reason += ": " + d.Reason
		}
		worse(Degraded, reason)
	}
}
