package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/clock"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// fakeSystem stands in for the kernel's clock, which a test must not set
// on the machine it runs on: it runs at the real rate, off the real time
// by offset. The broker, the NTP server and the subscriber are real.
type fakeSystem struct {
	mu     sync.Mutex
	offset time.Duration
	booted time.Time
}

func newFakeSystem(at time.Time) *fakeSystem {
	return &fakeSystem{offset: time.Until(at), booted: time.Now().Add(-time.Hour)}
}

func (f *fakeSystem) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(f.offset)
}

func (f *fakeSystem) Step(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offset = time.Until(t)
	return nil
}

func (f *fakeSystem) Slew(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offset += d
	return nil
}

func (f *fakeSystem) Boot() (string, time.Duration) { return "test-boot", time.Since(f.booted) }

// buildTime is a build a month ago: later than 1970, earlier than now.
var buildTime = time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second).UTC()

// piClock is the clock of a Raspberry Pi without an RTC booting in 1970:
// osgate may set the system clock (a fake one), nothing was saved.
func piClock(t *testing.T, hold time.Duration, sources ...string) (*clock.Clock, *fakeSystem) {
	sys := newFakeSystem(time.Unix(60, 0))
	var srcs []clock.Source
	for _, s := range sources {
		src, err := clock.ParseSource(s)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	c := clock.New(clock.Options{SetSystem: true, System: sys, BuildTime: buildTime, Hold: hold, Sources: srcs,
		StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	return c, sys
}

// deliverSeq hands the pipeline n polls of device d, channel seq = from,
// from+1, ..., each stamped by the (fake) system clock as a connector
// does. d is not a configured device: the test-counter device "meter"
// polls on its own.
func deliverSeq(t *testing.T, tg *testGateway, conn, d string, from, n int, sys *fakeSystem) {
	t.Helper()
	tg.g.mu.Lock()
	c := tg.g.conns[conn]
	tg.g.mu.Unlock()
	for i := from; i < from+n; i++ {
		rs := []core.Reading{{Device: d, Channel: "seq", Value: float64(i), Time: sys.Now(), Quality: core.Good}}
		if err := c.deliver(context.Background(), d, rs); err != nil {
			t.Fatalf("deliver %d: %v", i, err)
		}
	}
}

const holdEnvelope = `{
  "gateway": {"id": "gw-test", "state_dir": "%s"},
  "broker": {"listen": "BROKER"},
  "rpc": {"listen": "RPC", "api_keys": [{"name": "test", "sha256": "KEYHASH", "scope": "admin"}]},
  "connectors": [{"name":"c1","type":"test-counter","devices":[{"name":"meter","interval":"1h"}]}]
}`

// TestNoTimeSourceLosesNothing is a site without any time source (no
// internet NTP, no plant NTP, no RTC): the clock is restored to the build
// time and readings wait on disk for clock.hold, then all of them are
// exported, in order, stamped from the restored clock with quality
// uncertain. More than the 10,000 batches a memory queue used to hold
// before it dropped the oldest.
func TestNoTimeSourceLosesNothing(t *testing.T) {
	const n, hold = 12000, 4 * time.Second
	start := time.Now()
	clk, sys := piClock(t, hold)
	tg := startGatewayWith(t, fmt.Sprintf(holdEnvelope, t.TempDir()), quietLog(), func(g *Gateway) { g.clock = clk })
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-hold", Filter: "telemetry/gw-test/held"})
	deliverSeq(t, tg, "c1", "held", 0, n, sys)
	var st struct {
		ClockSet bool        `json:"clock_set"`
		Clock    clockStatus `json:"clock"`
	}
	tg.call(t, "gateway.status", nil, &st)
	// The configured device's own first poll may be held too.
	if st.ClockSet || st.Clock.State != clock.Restored || st.Clock.Held < n || st.Clock.Held > n+1 {
		t.Fatalf("status during the hold: clock_set %v, %+v", st.ClockSet, st.Clock)
	}
	if fi, err := os.Stat(filepath.Join(tg.g.cfg.Gateway.StateDir, holdFile)); err != nil || fi.Size() == 0 {
		t.Fatalf("no hold file on disk: %v", err)
	}
	if time.Since(start) < hold-time.Second && len(sub.Messages()) > 0 {
		t.Fatalf("%d messages exported during the hold", len(sub.Messages()))
	}
	if !sub.WaitDistinct(n, 2*time.Minute) {
		t.Fatalf("%d of %d held messages exported", sub.Distinct(), n)
	}
	if time.Since(start) < hold {
		t.Fatalf("exported %s after start, before the hold of %s was up", time.Since(start), hold)
	}
	next := 0.0
	var prev time.Time
	for _, m := range sub.Messages() {
		p := decodePayload(t, m.Payload)
		seq := p.Values["seq"].(float64)
		if seq < next-1 || seq > next {
			t.Fatalf("seq %v after %v: out of order", seq, next-1)
		}
		if seq == next {
			next++
		}
		if p.Quality["seq"] != "uncertain" || p.TS.Before(buildTime) || p.TS.Before(prev) {
			t.Fatalf("message %v: quality %q ts %s (build %s, previous %s)", seq, p.Quality["seq"], p.TS, buildTime, prev)
		}
		prev = p.TS
	}
	testpeer.WaitFor(t, 10*time.Second, "the hold file to go", func() bool {
		_, err := os.Stat(filepath.Join(tg.g.cfg.Gateway.StateDir, holdFile))
		return errors.Is(err, os.ErrNotExist)
	})
	// After the hold, readings go straight out, still uncertain.
	deliverSeq(t, tg, "c1", "held", n, 1, sys)
	m, ok := sub.WaitMessage(30*time.Second, func(m testpeer.Message) bool {
		return strings.Contains(string(m.Payload), fmt.Sprintf(`"seq":%d`, n))
	})
	if !ok || decodePayload(t, m.Payload).Quality["seq"] != "uncertain" {
		t.Fatalf("a reading after the hold: %v %s", ok, m.Payload)
	}
}

// TestHeldReadingsRestampedWhenNTPAnswers: readings taken while the clock
// ran from the build time wait; when a plant's NTP server (chronyd)
// answers, they leave stamped with the time they were really taken
// (quality uncertain: the time is reconstructed), and readings from then
// on are good.
func TestHeldReadingsRestampedWhenNTPAnswers(t *testing.T) {
	chrony := testpeer.StartChrony(t)
	clk, sys := piClock(t, time.Hour, "ntp://"+chrony.Addr())
	tg := startGatewayWith(t, fmt.Sprintf(holdEnvelope, t.TempDir()), quietLog(), func(g *Gateway) { g.clock = clk })
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-restamp", Filter: "telemetry/gw-test/held"})
	taken := time.Now()
	deliverSeq(t, tg, "c1", "held", 0, 3, sys)
	time.Sleep(2 * time.Second)
	if len(sub.Messages()) != 0 {
		t.Fatal("exported before a time source answered")
	}
	// The clock asks its source (it was not running until now): chronyd
	// answers, and the clock is stepped a month forward.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go clk.Run(ctx)
	testpeer.WaitFor(t, 20*time.Second, "chronyd to set the clock", clk.Synced)
	if !sub.WaitDistinct(3, 30*time.Second) {
		t.Fatalf("held readings not released after the clock was set: %d", sub.Distinct())
	}
	for _, m := range sub.Messages() {
		p := decodePayload(t, m.Payload)
		if d := p.TS.Sub(taken); d < -time.Second || d > 2*time.Second {
			t.Fatalf("held reading stamped %s, taken at %s", p.TS, taken)
		}
		if p.Quality["seq"] != "uncertain" {
			t.Fatalf("held reading of quality %q", p.Quality["seq"])
		}
	}
	deliverSeq(t, tg, "c1", "held", 3, 1, sys)
	m, ok := sub.WaitMessage(30*time.Second, func(m testpeer.Message) bool { return strings.Contains(string(m.Payload), `"seq":3`) })
	if !ok {
		t.Fatal("no live reading after the sync")
	}
	if p := decodePayload(t, m.Payload); p.Quality != nil || time.Since(p.TS).Abs() > 2*time.Second {
		t.Fatalf("live reading after the sync: %s", m.Payload)
	}
}

// TestHoldSurvivesARestart: readings held when osgate stops (a crash, a
// power cut, an update) are exported by the next run; a message cut short
// by a crash is dropped, the rest kept.
func TestHoldSurvivesARestart(t *testing.T) {
	state := t.TempDir()
	clk, sys := piClock(t, time.Hour)
	tg := startGatewayWith(t, fmt.Sprintf(holdEnvelope, state), quietLog(), func(g *Gateway) { g.clock = clk })
	deliverSeq(t, tg, "c1", "held", 0, 5, sys)
	tg.stop(t)
	f, err := os.OpenFile(filepath.Join(state, holdFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"topic":"telemetry/gw-test/held","conn":"c1","device":"held","readings":[{"c":"seq","k":"f","v":"9`)
	f.Close()

	clk2, _ := piClock(t, 0) // the next run: no hold
	tg2 := startGatewayWith(t, fmt.Sprintf(holdEnvelope, state), quietLog(), func(g *Gateway) { g.clock = clk2 })
	sub := testpeer.Subscribe(t, tg2.broker, testpeer.SubscriberOptions{ClientID: "t-restart", Filter: "telemetry/gw-test/held"})
	if !sub.WaitDistinct(5, time.Minute) {
		t.Fatalf("%d of 5 held readings exported after the restart", sub.Distinct())
	}
	time.Sleep(time.Second)
	for i, m := range sub.Messages() {
		if seq := decodePayload(t, m.Payload).Values["seq"]; seq != float64(i) {
			t.Fatalf("message %d is seq %v", i, seq)
		}
	}
	if len(sub.Messages()) != 5 {
		t.Fatalf("%d messages, want the 5 whole ones", len(sub.Messages()))
	}
}

func TestHeldReadingRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	rs := []core.Reading{
		{Device: "d", Channel: "f", Value: 1.5, Unit: "V", Time: at, Quality: core.Good},
		{Device: "d", Channel: "nan", Value: math.NaN(), Time: at},
		{Device: "d", Channel: "inf", Value: math.Inf(-1), Time: at},
		{Device: "d", Channel: "i", Value: int64(math.MaxInt64), Time: at, Quality: core.Uncertain},
		{Device: "d", Channel: "b", Value: true, Time: at},
		{Device: "d", Channel: "s", Value: "on\n\"x\"", Time: at},
		{Device: "d", Channel: "bad", Time: at, Quality: core.Bad, Err: errors.New("timeout")},
	}
	m := heldMessage{Topic: "telemetry/g/d", Conn: "c", Device: "d", Mark: clock.Mark{Boot: "b", Since: time.Second, Wall: at}}
	for _, r := range rs {
		m.Readings = append(m.Readings, toHeld(r))
	}
	line, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, back, err := decodeHeld(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.Topic != m.Topic || got.Conn != "c" || !got.Mark.Wall.Equal(at) || got.Mark.Since != time.Second {
		t.Fatalf("message %+v", got)
	}
	for i, r := range back {
		w := rs[i]
		if f, ok := w.Value.(float64); ok && math.IsNaN(f) {
			if g, ok := r.Value.(float64); !ok || !math.IsNaN(g) {
				t.Errorf("%s: %v", w.Channel, r.Value)
			}
			continue
		}
		if !reflect.DeepEqual(r.Value, w.Value) || !r.Time.Equal(w.Time) || r.Quality != w.Quality || r.Unit != w.Unit || (w.Err == nil) != (r.Err == nil) {
			t.Errorf("%s: got %+v, want %+v", w.Channel, r, w)
		}
	}
}

func TestRestamp(t *testing.T) {
	held := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	rs := []core.Reading{
		{Channel: "a", Time: held.Add(-time.Second), Quality: core.Good},      // the gateway's stamp
		{Channel: "b", Time: held.Add(-48 * time.Hour), Quality: core.Good},   // a device's own
		{Channel: "c", Time: held, Quality: core.Bad, Err: errors.New("crc")}, // bad stays bad
		{Channel: "d", Time: held.Add(-time.Minute), Quality: core.Uncertain},
	}
	restamp(rs, held, 40*24*time.Hour, true)
	want := []time.Time{held.Add(40*24*time.Hour - time.Second), held.Add(-48 * time.Hour), held.Add(40 * 24 * time.Hour), held.Add(40*24*time.Hour - time.Minute)}
	for i, r := range rs {
		if !r.Time.Equal(want[i]) {
			t.Errorf("%s: %s, want %s", r.Channel, r.Time, want[i])
		}
	}
	if rs[0].Quality != core.Uncertain || rs[2].Quality != core.Bad {
		t.Errorf("qualities %v %v", rs[0].Quality, rs[2].Quality)
	}
	// Another boot: nothing is known, the times stay.
	rs = []core.Reading{{Channel: "a", Time: held, Quality: core.Good}}
	restamp(rs, held, 0, false)
	if !rs[0].Time.Equal(held) || rs[0].Quality != core.Uncertain {
		t.Errorf("unknown move: %+v", rs[0])
	}
}

// TestHoldFile: lines in, batches out, a line longer than a hold may be
// skipped whole, the file removed once everything left.
func TestHoldFile(t *testing.T) {
	dir := t.TempDir()
	h, err := openHold(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if h.active() {
		t.Fatal("an empty hold is active")
	}
	m := heldMessage{Topic: "telemetry/g/d", Conn: "c", Readings: []heldReading{{Channel: "x", Kind: "f", Value: "1"}}}
	for range 3 {
		if err := h.add(m); err != nil {
			t.Fatal(err)
		}
	}
	start, lines, err := h.batch(1)
	if err != nil || start != 0 || len(lines) != 1 {
		t.Fatalf("batch(1) = %d, %d lines, %v", start, len(lines), err)
	}
	h.released(lines[0].end, 1)
	h.close()
	h, err = openHold(dir, quietLog()) // a restart: the first is not sent again
	if err != nil {
		t.Fatal(err)
	}
	if h.held() != 2 || !h.active() {
		t.Fatalf("after a restart: %d held", h.held())
	}
	start, lines, err = h.batch(1 << 20)
	if err != nil || start != lines[0].end-int64(len(lines[0].data)) || len(lines) != 2 {
		t.Fatalf("batch = %d, %d lines, %v", start, len(lines), err)
	}
	h.released(lines[1].end, 2)
	if h.active() || h.held() != 0 {
		t.Fatal("an emptied hold is active")
	}
	for _, f := range []string{holdFile, holdDoneFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
}

func FuzzHeldMessage(f *testing.F) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	m := heldMessage{Topic: "telemetry/g/d", Conn: "c", Device: "d", Mark: clock.Mark{Boot: "b", Wall: at},
		Readings: []heldReading{toHeld(core.Reading{Channel: "v", Value: 230.1, Time: at}), toHeld(core.Reading{Channel: "e", Quality: core.Bad, Err: errors.New("x")})}}
	b, _ := json.Marshal(m)
	f.Add(b)
	f.Add([]byte(`{"topic":"t","readings":[{"c":"x","k":"i","v":"99999999999999999999"}]}`))
	f.Add([]byte(`{"topic":"a/+/b","readings":[{"c":"x","k":"b","v":"true"}]}`))
	f.Add([]byte(`{"topic":"t","readings":[{"c":"x","q":9}]}`))
	f.Add([]byte(`{"topic":"t","readings":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, rs, err := decodeHeld(b)
		if err != nil {
			return
		}
		if len(rs) != len(m.Readings) || len(rs) == 0 {
			t.Fatalf("%d readings of %d", len(rs), len(m.Readings))
		}
		for _, r := range rs {
			switch r.Value.(type) {
			case nil:
				if r.Quality != core.Bad {
					t.Fatalf("no value, quality %s", r.Quality)
				}
			case float64, int64, bool, string:
			default:
				t.Fatalf("value of type %T", r.Value)
			}
		}
	})
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
