package clock

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/prom"
	"github.com/osgate/osgate/internal/testpeer"
)

// fakeSystem stands in for the kernel's clock: a test must not set the
// clock of the machine it runs on. It runs at the real rate, off the real
// time by offset, and records what the Clock did to it. The NTP and HTTPS
// servers the tests ask are real (chronyd, nginx).
type fakeSystem struct {
	mu      sync.Mutex
	offset  time.Duration
	steps   []time.Time
	slews   []time.Duration
	stepErr error
	boot    string
	booted  time.Time // when "this boot" began, in real time
}

func newFakeSystem(at time.Time) *fakeSystem {
	return &fakeSystem{offset: time.Until(at), boot: "boot-1", booted: time.Now().Add(-time.Hour)}
}

func (f *fakeSystem) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(f.offset)
}

func (f *fakeSystem) Step(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stepErr != nil {
		return f.stepErr
	}
	f.offset = time.Until(t)
	f.steps = append(f.steps, t)
	return nil
}

func (f *fakeSystem) Slew(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offset += d
	f.slews = append(f.slews, d)
	return nil
}

func (f *fakeSystem) Boot() (string, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.boot, time.Since(f.booted)
}

func (f *fakeSystem) stepCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.steps)
}

var (
	y1970 = time.Unix(60, 0)
	// build is a build time a month ago: the real time is later.
	build = time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second).UTC()
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustSource(t *testing.T, s string) Source {
	t.Helper()
	src, err := ParseSource(s)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func near(a, b time.Time, within time.Duration) bool { return a.Sub(b).Abs() <= within }

// TestRestoreFromBuildTime is a Raspberry Pi's first boot: the system
// clock says 1970, nothing was saved. The clock is set to the build time
// at once (so TLS can check certificates from the first second), and
// readings wait for a time source.
func TestRestoreFromBuildTime(t *testing.T) {
	sys := newFakeSystem(y1970)
	dir := t.TempDir()
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, StateDir: dir, Hold: time.Minute, Logger: quiet()})
	if sys.stepCount() != 1 || !near(sys.steps[0], build, time.Second) {
		t.Fatalf("steps %v, want one to the build time %s", sys.steps, build)
	}
	if c.Synced() || !c.Hold() {
		t.Fatalf("synced %v hold %v: nothing has answered yet", c.Synced(), c.Hold())
	}
	st := c.Status()
	if st.State != Restored || st.Source != "build" || st.FloorFrom != "build" || !st.SetSystem || st.HoldUntil == "" {
		t.Fatalf("status %+v", st)
	}
	if now := c.Now(); now.Before(build) || now.After(build.Add(time.Minute)) {
		t.Fatalf("Now %s, want just after the build time %s", now, build)
	}
	saved := readSaved(t, dir)
	if saved.State != Restored || saved.BootID != "boot-1" || saved.Time.Before(build) {
		t.Fatalf("state file %+v", saved)
	}
}

// TestRestoreFromSavedTime: the next boot restores the time saved before,
// not the older build time; a saved time older than the build is not used.
func TestRestoreFromSavedTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		saved  time.Time
		want   time.Time
		source string
	}{
		{"saved after the build", build.Add(10 * 24 * time.Hour), build.Add(10 * 24 * time.Hour), "saved"},
		{"saved before the build", build.Add(-24 * time.Hour), build, "build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeState(filepath.Join(dir, StateFile), saved{Time: tc.saved, BootID: "boot-0", State: Synced, Source: "ntp://x"}); err != nil {
				t.Fatal(err)
			}
			sys := newFakeSystem(y1970)
			c := New(Options{SetSystem: true, System: sys, BuildTime: build, StateDir: dir, Logger: quiet()})
			if sys.stepCount() != 1 || !near(sys.steps[0], tc.want, time.Second) {
				t.Fatalf("steps %v, want one to %s", sys.steps, tc.want)
			}
			// Synced in boot-0 says nothing about this boot.
			if st := c.Status(); st.State != Restored || st.Source != tc.source || c.Synced() {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestRestartInTheSameBoot: osgate restarted (a crash, an update of the
// config) finds the clock as it left it in this boot.
func TestRestartInTheSameBoot(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := writeState(filepath.Join(dir, StateFile), saved{Time: now.Add(-time.Second), BootID: "boot-1", State: Synced, Source: "ntp://10.0.0.1:123", LastSync: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	sys := newFakeSystem(now)
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, StateDir: dir, Hold: time.Minute, Logger: quiet()})
	if !c.Synced() || c.Hold() || sys.stepCount() != 0 {
		t.Fatalf("synced %v hold %v steps %v: the clock was synced in this boot", c.Synced(), c.Hold(), sys.steps)
	}
	if st := c.Status(); st.Source != "ntp://10.0.0.1:123" {
		t.Fatalf("status %+v", st)
	}
}

// TestWithoutSetSystem: on a host whose clock osgate may not set, a
// system clock in 1970 is left alone, but nothing the gateway stamps is
// before the build time.
func TestWithoutSetSystem(t *testing.T) {
	sys := newFakeSystem(y1970)
	c := New(Options{System: sys, BuildTime: build, StateDir: t.TempDir(), Sources: []Source{mustSource(t, "system")}, Logger: quiet()})
	if sys.stepCount() != 0 {
		t.Fatalf("set the clock without leave: %v", sys.steps)
	}
	if c.Synced() {
		t.Fatal("a 1970 system clock counts as synced")
	}
	if now := c.Now(); now.Before(build) || now.After(build.Add(time.Minute)) {
		t.Fatalf("Now %s, want the build time %s plus the time since start", now, build)
	}
	time.Sleep(200 * time.Millisecond)
	taken := sys.Now().Add(-100 * time.Millisecond)
	if got := c.Stamp(taken); got.Before(build) || !near(got, c.Now().Add(-100*time.Millisecond), 20*time.Millisecond) {
		t.Fatalf("Stamp(%s) = %s, want 100 ms before %s", taken, got, c.Now())
	}
	if got := c.Stamp(y1970); !got.Equal(build) {
		t.Fatalf("Stamp of a time before start = %s, want the build time %s", got, build)
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), StateFile)); err == nil {
		t.Fatal("saved a state without SetSystem")
	}
	// The operating system sets its clock: "system" answers.
	sys.Step(time.Now())
	if !c.round(t.Context()) || !c.Synced() || c.Status().Source != "system" {
		t.Fatalf("after the OS set its clock: %+v", c.Status())
	}
	if now := c.Now(); !near(now, time.Now(), time.Second) {
		t.Fatalf("Now %s, want the system's", now)
	}
}

// TestOSClockTrustsASetClock is what every gateway made without the
// process's clock uses: a clock past the build time is right.
func TestOSClockTrustsASetClock(t *testing.T) {
	c := OS(build)
	if !c.Synced() || c.Hold() {
		t.Fatalf("OS clock on a set system clock: synced %v hold %v", c.Synced(), c.Hold())
	}
	if st := c.Status(); st.State != Synced || st.Source != "system" || st.SetSystem {
		t.Fatalf("status %+v", st)
	}
}

// TestNTPSetsTheClock asks a real NTP server (chronyd, serving this
// machine's time) from a clock restored a month behind.
func TestNTPSetsTheClock(t *testing.T) {
	chrony := testpeer.StartChrony(t)
	sys := newFakeSystem(y1970)
	dir := t.TempDir()
	rtcDev := filepath.Join(t.TempDir(), "rtc0") // an RTC "device" the fake writeRTC records
	os.WriteFile(rtcDev, nil, 0o600)
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, StateDir: dir, Hold: time.Minute, RTCDevice: rtcDev,
		Sources: []Source{mustSource(t, "ntp://"+chrony.Addr())}, Logger: quiet()})
	var rtcWrites []time.Time
	c.writeRTC = func(dev string, t time.Time) error { rtcWrites = append(rtcWrites, t); return nil }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	testpeer.WaitFor(t, 20*time.Second, "the clock to sync from NTP", c.Synced)
	cancel()
	<-done
	if now := sys.Now(); !near(now, time.Now(), 100*time.Millisecond) {
		t.Fatalf("system clock %s after NTP, want %s", now, time.Now())
	}
	st := c.Status()
	if st.State != Synced || st.Source != "ntp://"+chrony.Addr() || c.Hold() {
		t.Fatalf("status %+v", st)
	}
	off, err := time.ParseDuration(st.Offset)
	if err != nil || (off-30*24*time.Hour).Abs() > 2*time.Second {
		t.Fatalf("offset %q (%v), want about the month the restored clock was behind", st.Offset, err)
	}
	if len(rtcWrites) != 1 || !near(rtcWrites[0], time.Now(), time.Second) {
		t.Fatalf("RTC writes %v, want one with the NTP time", rtcWrites)
	}
	if got := gaugeValue(t, metrics.ClockSynced); got != 1 {
		t.Fatalf("osgate_clock_synced %v", got)
	}
	if got := gaugeValue(t, metrics.ClockState.WithLabelValues("synced", "ntp://"+chrony.Addr())); got != 1 {
		t.Fatalf("osgate_clock_state{synced} %v", got)
	}
	saved := readSaved(t, dir)
	if saved.State != Synced || !near(saved.Time, time.Now(), 2*time.Second) || saved.Source != st.Source {
		t.Fatalf("state saved at stop %+v", saved)
	}
	// A small offset later is slewed, not stepped.
	sys.mu.Lock()
	sys.offset = -30 * time.Millisecond
	sys.mu.Unlock()
	steps := sys.stepCount()
	if !c.round(t.Context()) || sys.stepCount() != steps || len(sys.slews) != 1 || (sys.slews[0]-30*time.Millisecond).Abs() > 20*time.Millisecond {
		t.Fatalf("steps %v slews %v, want one slew of about 30ms", sys.steps, sys.slews)
	}
}

// TestSourcesInOrder: a plant's NTP server that is down, one that is a
// name nobody resolves, then one that answers.
func TestSourcesInOrder(t *testing.T) {
	chrony := testpeer.StartChrony(t)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sys := newFakeSystem(y1970)
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, Logger: quiet(), Sources: []Source{
		mustSource(t, "ntp://"+silent.LocalAddr().String()),
		mustSource(t, "ntp://ntp.invalid"),
		mustSource(t, "ntp://"+chrony.Addr()),
	}})
	c.timeout = 500 * time.Millisecond
	if !c.round(t.Context()) {
		t.Fatalf("no source answered: %v", c.Status().Errors)
	}
	st := c.Status()
	if st.Source != "ntp://"+chrony.Addr() || len(st.Errors) != 2 {
		t.Fatalf("status %+v, want the third source after two errors", st)
	}
	if !strings.Contains(st.Errors[0], "no answer") || !strings.Contains(st.Errors[1], "ntp.invalid") {
		t.Fatalf("errors %q", st.Errors)
	}
	// Nothing answers: the errors say why, the clock stays synced.
	c.sources = c.sources[:2]
	if c.round(t.Context()) || !c.Synced() || len(c.Status().Errors) != 2 {
		t.Fatalf("round without an answer: %+v", c.Status())
	}
}

// TestWithoutSetSystemSourcesConfirm: without clock.set_system a source
// only confirms the system clock, and a system clock that is off is
// reported, never set.
func TestWithoutSetSystemSourcesConfirm(t *testing.T) {
	chrony := testpeer.StartChrony(t)
	sys := newFakeSystem(time.Now())
	c := New(Options{System: sys, BuildTime: build, Logger: quiet(), Sources: []Source{mustSource(t, "ntp://"+chrony.Addr())}})
	if c.Synced() || c.Status().State != Unsynced {
		t.Fatalf("synced before any source answered: %+v", c.Status())
	}
	if !c.round(t.Context()) || !c.Synced() {
		t.Fatalf("a right system clock not confirmed: %+v", c.Status())
	}
	sys.mu.Lock()
	sys.offset = -10 * time.Second
	sys.mu.Unlock()
	if c.round(t.Context()) || c.Synced() {
		t.Fatalf("a system clock 10 s off counts as synced: %+v", c.Status())
	}
	if errs := c.Status().Errors; len(errs) != 1 || !strings.Contains(errs[0], "clock.set_system is false") {
		t.Fatalf("errors %q", errs)
	}
	if sys.stepCount() != 0 || len(sys.slews) != 0 {
		t.Fatal("the system clock was changed without clock.set_system")
	}
}

// TestStepRefused: osgate without CAP_SYS_TIME says so, and its own
// clock still never goes before the floor.
func TestStepRefused(t *testing.T) {
	chrony := testpeer.StartChrony(t)
	sys := newFakeSystem(y1970)
	sys.stepErr = errors.New("operation not permitted")
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, Logger: quiet(), Sources: []Source{mustSource(t, "ntp://"+chrony.Addr())}})
	if c.Now().Before(build) {
		t.Fatalf("Now %s before the build time", c.Now())
	}
	if c.round(t.Context()) || c.Synced() {
		t.Fatal("synced without setting the clock")
	}
	if errs := c.Status().Errors; len(errs) != 1 || !strings.Contains(errs[0], "CAP_SYS_TIME") {
		t.Fatalf("errors %q", errs)
	}
}

// TestHTTPSDate asks a real HTTPS server (nginx) for its Date. Its
// certificate was issued after the time the clock was restored to, which
// a check against the restored clock would refuse: it is checked at the
// server's own date instead. A certificate that has expired by that date
// is refused.
func TestHTTPSDate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		notBefore time.Time
		notAfter  time.Time
		ok        bool
	}{
		{"issued after the restored time", time.Now().Add(-time.Hour), time.Now().Add(24 * time.Hour), true},
		{"expired", time.Now().Add(-48 * time.Hour), time.Now().Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := testpeer.WriteTestCerts(dir, tc.notBefore, tc.notAfter); err != nil {
				t.Fatal(err)
			}
			www := t.TempDir()
			os.WriteFile(filepath.Join(www, "index.html"), []byte("fleet"), 0o644)
			n := testpeer.StartNginx(t, testpeer.NginxOptions{Root: www, TLS: true,
				Server: fmt.Sprintf("ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key;", dir, dir)})
			pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			sys := newFakeSystem(y1970)
			c := New(Options{SetSystem: true, System: sys, BuildTime: build, Logger: quiet(), HTTPSTLS: &tls.Config{RootCAs: pool},
				Sources: []Source{mustSource(t, "https://"+n.Addr()+"/index.html")}})
			// The restored clock cannot check this certificate itself.
			if conn, err := tls.Dial("tcp", n.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Time: sys.Now}); err == nil {
				conn.Close()
				t.Fatal("a TLS check against the restored clock passed: the test shows nothing")
			}
			got := c.round(t.Context())
			if got != tc.ok {
				t.Fatalf("answered %v, want %v: %+v", got, tc.ok, c.Status())
			}
			if !tc.ok {
				if errs := c.Status().Errors; len(errs) != 1 || !strings.Contains(errs[0], "not valid at its own Date") {
					t.Fatalf("errors %q", errs)
				}
				return
			}
			// Date has whole seconds.
			if now := sys.Now(); !near(now, time.Now(), 1500*time.Millisecond) {
				t.Fatalf("system clock %s after the HTTPS Date, want %s", now, time.Now())
			}
			testpeer.WaitFor(t, 10*time.Second, "nginx to log the HEAD request", func() bool {
				return len(n.AccessLog("HEAD /index.html")) == 1
			})
		})
	}
}

// TestRTC: the real-time clock answers when no network source does; a
// chip whose battery went flat (it reads 2000) does not. The RTC is a
// function here: there is no RTC on the machines the tests run on (the
// amd64 VM test reads qemu's).
func TestRTC(t *testing.T) {
	sys := newFakeSystem(y1970)
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, Logger: quiet(), Sources: []Source{mustSource(t, "rtc")}})
	var read []string
	rtcNow := time.Now()
	c.readRTC = func(dev string) (time.Time, error) { read = append(read, dev); return rtcNow, nil }
	c.writeRTC = func(string, time.Time) error { t.Error("the RTC written from itself"); return nil }
	if !c.round(t.Context()) || c.Status().Source != "rtc" || !near(sys.Now(), time.Now(), 10*time.Millisecond) {
		t.Fatalf("rtc: %+v, system %s", c.Status(), sys.Now())
	}
	if len(read) != 1 || read[0] != DefaultRTC {
		t.Fatalf("read %v", read)
	}
	c2 := New(Options{SetSystem: true, System: newFakeSystem(y1970), BuildTime: build, Logger: quiet(), Sources: []Source{mustSource(t, "rtc:/dev/rtc1")}})
	c2.readRTC = func(dev string) (time.Time, error) { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), nil }
	if c2.round(t.Context()) {
		t.Fatal("an RTC reading 2000 answered")
	}
	if errs := c2.Status().Errors; len(errs) != 1 || !strings.Contains(errs[0], "/dev/rtc1") || !strings.Contains(errs[0], "battery") {
		t.Fatalf("errors %q", errs)
	}
}

func TestRTCTime(t *testing.T) {
	got, err := rtcTime(rtcFields{Year: 126, Mon: 11, Mday: 6, Hour: 10, Min: 0, Sec: 5})
	if err != nil || !got.Equal(time.Date(2026, 12, 6, 10, 0, 5, 5e8, time.UTC)) {
		t.Fatalf("rtcTime = %s, %v", got, err)
	}
	for _, f := range []rtcFields{
		{Year: 126, Mon: 1, Mday: 30}, // 30 February
		{Year: 126, Mon: 12, Mday: 1},
		{Year: 126, Mon: 0, Mday: 0},
		{Year: 126, Mon: 0, Mday: 1, Hour: 24},
		{Year: -1900, Mon: 0, Mday: 1},
	} {
		if _, err := rtcTime(f); err == nil {
			t.Errorf("rtcTime(%+v) accepted", f)
		}
	}
}

// TestSaveEveryMinuteAndAtStop: the time is saved when Run ends (a
// shutdown), so the next boot starts from it.
func TestSaveAtStop(t *testing.T) {
	dir := t.TempDir()
	sys := newFakeSystem(y1970)
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, StateDir: dir, Logger: quiet()})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	time.Sleep(1100 * time.Millisecond)
	cancel()
	<-done
	s := readSaved(t, dir)
	if !s.Time.After(build.Add(time.Second)) || !near(s.Time, c.Now(), time.Second) {
		t.Fatalf("saved %s, want the clock's time at stop (%s)", s.Time, c.Now())
	}
	// The next boot restores from it.
	c2 := New(Options{SetSystem: true, System: newFakeSystem(y1970), BuildTime: build, StateDir: dir, Logger: quiet()})
	if st := c2.Status(); st.FloorFrom != "saved" || !c2.Floor().Equal(s.Time) {
		t.Fatalf("next boot: %+v", st)
	}
}

// TestMoved: how far the clock was set since a reading was held, known
// within one boot only.
func TestMoved(t *testing.T) {
	sys := newFakeSystem(y1970)
	c := New(Options{SetSystem: true, System: sys, BuildTime: build, Logger: quiet()})
	m := c.Mark()
	time.Sleep(20 * time.Millisecond)
	sys.Step(sys.Now().Add(40 * 24 * time.Hour))
	if d, ok := c.Moved(m); !ok || (d-40*24*time.Hour).Abs() > 10*time.Millisecond {
		t.Fatalf("Moved = %s, %v; want 40 days", d, ok)
	}
	m.Boot = "boot-0"
	if _, ok := c.Moved(m); ok {
		t.Fatal("a mark of another boot is known")
	}
}

func TestReadStateDamaged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, StateFile)
	for _, content := range []string{"{", `{"time":"soon"}`, strings.Repeat(" ", maxStateFile+1)} {
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := readState(p); err == nil {
			t.Errorf("state %.20q read without error", content)
		}
		// A damaged file restores from the build time and is rewritten.
		sys := newFakeSystem(y1970)
		c := New(Options{SetSystem: true, System: sys, BuildTime: build, StateDir: dir, Logger: quiet()})
		if c.Status().FloorFrom != "build" || readSaved(t, dir).State != Restored {
			t.Errorf("after state %.20q: %+v", content, c.Status())
		}
	}
}

func FuzzState(f *testing.F) {
	f.Add([]byte(`{"time":"2026-12-06T10:00:00Z","boot_id":"b","state":"synced","source":"ntp://x","last_sync":"2026-12-06T09:00:00Z"}`))
	f.Add([]byte(`{"time":"2026-12-06T10:00:00Z","state":"weird"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[1,2]`))
	dir := f.TempDir()
	p := filepath.Join(dir, StateFile)
	f.Fuzz(func(t *testing.T, b []byte) {
		os.WriteFile(p, b, 0o600)
		s, err := readState(p)
		if err != nil {
			return
		}
		switch s.State {
		case "", Synced, Restored, Unsynced:
		default:
			t.Fatalf("state %q kept", s.State)
		}
	})
}

func readSaved(t *testing.T, dir string) saved {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func gaugeValue(t *testing.T, g *prom.Gauge) float64 {
	t.Helper()
	return g.Value()
}
