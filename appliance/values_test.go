package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestObserveNoAllocation: recording a channel's last number for the
// technician's pages allocates nothing once its trend exists: it runs for
// every reading the gateway exports.
func TestObserveNoAllocation(t *testing.T) {
	dv := newDeviceValues(config.Device{}, []*core.Channel{{Name: "f"}, {Name: "i"}})
	now := time.Now()
	rf := core.Reading{Channel: "f", Value: 230.5, Time: now, Quality: core.Good}
	ri := core.Reading{Channel: "i", Value: int64(1234567), Time: now, Quality: core.Good}
	keep := transform.Outcome{Verdict: transform.Keep}
	dv.observe("f", &rf, keep, now)
	dv.observe("i", &ri, keep, now)
	allocs := testing.AllocsPerRun(1000, func() {
		dv.observe("f", &rf, keep, now)
		dv.observe("i", &ri, keep, now)
	})
	if allocs != 0 {
		t.Errorf("observe allocates %.1f times for two numeric readings, want 0", allocs)
	}
	if v := dv.byName["f"].value; v != 230.5 {
		t.Errorf("last value %v, want 230.5", v)
	}
	if v := dv.byName["i"].value; v != int64(1234567) {
		t.Errorf("last value %v, want 1234567", v)
	}
}

// TestDeliverFindsChannels: the pipeline finds a configured channel's
// transforms and last value at its place in the batch when the driver
// reports the configured channels in their order, and by name when it
// does not (another order, channels left out, channels not configured):
// each reading gets its own channel's transform either way.
func TestDeliverFindsChannels(t *testing.T) {
	// Every configured channel's value is dropped by its range (max -1):
	// what each reading became shows in the values kept. The channel that
	// is not configured is exported.
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	cfg, err := config.Parse([]byte(`{"gateway":{"id":"gw-t","state_dir":"` + t.TempDir() + `"},"broker":{"managed":false,"url":"` + br.URL() + `"},"rpc":{"listen":"off"},
		"connectors":[{"name":"c1","type":"test-counter","devices":[{"name":"m","channels":[
		{"name":"a","scale":2,"max":-1},{"name":"b","scale":3,"max":-1},{"name":"c","scale":5,"max":-1}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := export.New(g.exportOptions(cfg, br.URL()))
	if err != nil {
		t.Fatal(err)
	}
	g.sink = sink
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := g.conns["c1"]
	for _, order := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b", "a", "x", "c"}, {"x", "a"}, {"c"}, {"a", "b", "c"}} {
		var rs []core.Reading
		for k, name := range order {
			rs = append(rs, core.Reading{Channel: name, Value: int64(10 + k), Time: time.Now(), Quality: core.Good})
		}
		if err := c.deliver(ctx, "m", rs); err != nil {
			t.Fatal(err)
		}
		vals := map[string]any{}
		for _, cv := range c.byName["m"].vals.snapshot(0) {
			vals[cv.Channel] = cv.Value
		}
		scale := map[string]float64{"a": 2, "b": 3, "c": 5, "x": 1}
		for k, name := range order {
			if got, want := fmt.Sprint(vals[name]), fmt.Sprint(scale[name]*float64(10+k)); got != want {
				t.Errorf("batch %v: %s is %s, want %s", order, name, got, want)
			}
		}
	}
}

// TestTrendLastValuePerStep: the trend keeps the last value of each
// 5-second step, the newest trendLen steps, oldest first, and thins them
// evenly keeping the newest; checked against a plain list over readings
// at uneven times (several a step, steps without one), through a
// connector restart (inherit).
func TestTrendLastValuePerStep(t *testing.T) {
	dv := newDeviceValues(config.Device{}, []*core.Channel{{Name: "x"}})
	keep := transform.Outcome{Verdict: transform.Keep}
	if got := dv.snapshot(10)[0].Trend; got != nil {
		t.Fatalf("trend before any reading: %v", got)
	}
	base := time.UnixMilli(1_800_000_000_000)
	var want [][2]float64 // the reference: last value of each step
	lastStep := int64(-1)
	at := base
	for i := range 400 {
		// 3 readings in most steps, now and then a gap of two steps.
		at = at.Add(1700 * time.Millisecond)
		if i%37 == 0 {
			at = at.Add(2 * trendStep)
		}
		v := float64(i) * 1.5
		r := core.Reading{Channel: "x", Value: v, Time: at, Quality: core.Good}
		dv.observe("x", &r, keep, at)
		ms := at.UnixMilli()
		step := ms / trendStep.Milliseconds()
		if step == lastStep {
			want[len(want)-1] = [2]float64{float64(ms), v}
		} else {
			want = append(want, [2]float64{float64(ms), v})
			lastStep = step
		}
		if len(want) > trendLen {
			want = want[len(want)-trendLen:]
		}
		if i%13 != 0 && i != 399 {
			continue
		}
		if got := dv.snapshot(trendLen)[0].Trend; !slices.Equal(got, want) {
			t.Fatalf("after reading %d: trend has %d points, want %d\ngot  %v\nwant %v", i, len(got), len(want), tail(got), tail(want))
		}
	}
	// Thinned: evenly from the oldest, the newest always kept.
	for _, k := range []int{1, 2, 7, 119} {
		got := dv.snapshot(k)[0].Trend
		if len(got) != k || got[len(got)-1] != want[len(want)-1] || (k > 1 && got[0] != want[0]) {
			t.Fatalf("%d points: %v", k, got)
		}
	}
	// A restarted connector's run takes the trend over, and the two no
	// longer share it.
	next := newDeviceValues(config.Device{}, []*core.Channel{{Name: "x"}})
	next.inherit(dv)
	if got := next.snapshot(trendLen)[0].Trend; !slices.Equal(got, want) {
		t.Fatalf("inherited trend: %v", tail(got))
	}
	at = at.Add(time.Minute)
	r := core.Reading{Channel: "x", Value: -1.0, Time: at, Quality: core.Good}
	next.observe("x", &r, keep, at)
	if got := dv.snapshot(trendLen)[0].Trend; !slices.Equal(got, want) {
		t.Fatalf("the old run's trend changed with the new run's reading: %v", tail(got))
	}
}

func tail(p [][2]float64) [][2]float64 { return p[max(0, len(p)-4):] }

// TestTrendKeepsValuesAndTimesWhole: the trend keeps float32 values in
// half the room, and widens to float64 when a value is not one exactly;
// no value or time is rounded, and a point 24.8 days or more from the
// ring's center (a slow channel, a clock set far back or ahead) drops only
// the points as far from it. The reference is a plain list.
func TestTrendKeepsValuesAndTimesWhole(t *testing.T) {
	dv := newDeviceValues(config.Device{}, []*core.Channel{{Name: "x"}})
	keep := transform.Outcome{Verdict: transform.Keep}
	at := time.UnixMilli(1_800_000_000_123)
	var ring [][2]float64 // the reference's points before the tip
	var tip [2]float64
	center, have := int64(0), false
	const far = 1<<31 - 1 // ms
	push := func(p [2]float64) {
		ms := int64(p[0])
		if !have || ms-center > far || center-ms > far+1 {
			center, have = ms, true
			ring = slices.DeleteFunc(ring, func(q [2]float64) bool {
				d := int64(q[0]) - ms
				return d > far || -d > far+1
			})
		}
		ring = append(ring, p)
		if len(ring) > trendLen-1 {
			ring = ring[1:]
		}
	}
	for i := range 600 {
		switch {
		case i == 200 || i == 300:
			at = at.Add(20 * 24 * time.Hour) // a slow channel
		case i == 400:
			at = at.Add(-30 * 24 * time.Hour) // the clock set back
		case i == 500:
			at = at.Add(90 * 24 * time.Hour)
		default:
			at = at.Add(5*time.Second + time.Duration(i%7)*time.Millisecond)
		}
		v := float64(i) * 1.5 // exact in float32
		if i >= 250 {
			v = float64(i) * 0.1 // not
		}
		if i == 120 {
			v = 1 << 40 // large, and exact
		}
		r := core.Reading{Channel: "x", Value: v, Time: at, Quality: core.Good}
		dv.observe("x", &r, keep, at)
		if i > 0 {
			push(tip)
		}
		tip = [2]float64{float64(at.UnixMilli()), v}
		want := append(slices.Clone(ring), tip)
		if got := dv.snapshot(trendLen)[0].Trend; !slices.Equal(got, want) {
			t.Fatalf("after reading %d: trend has %d points, want %d\ngot  %v\nwant %v", i, len(got), len(want), tail(got), tail(want))
		}
		// 25.1, read at 251, is the first value that is not a float32;
		// the ring takes it when the next step begins.
		if wide := dv.chans[0].trend.f64 != nil; wide != (i >= 252) {
			t.Fatalf("after reading %d: float64 values %v", i, wide)
		}
	}
}
