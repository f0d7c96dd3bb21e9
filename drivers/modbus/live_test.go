package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// liveChannel is a channel of the peer's unit 1 and the value the server
// holds for it at tick t (see testdata/server.py).
type liveChannel struct {
	name, settings string
	want           func(t int64) any
}

var liveHolding = []liveChannel{
	{"tick", `{"register":"holding","address":0,"type":"uint32"}`, func(t int64) any { return t }},
	{"u16", `{"register":"holding","address":2}`, func(t int64) any { return t & 0xFFFF }},
	{"i16", `{"register":"holding","address":3,"type":"int16"}`, func(t int64) any { return -(t % 30000) }},
	{"i32_cdab", `{"register":"holding","address":4,"type":"int32","order":"CDAB"}`, func(t int64) any { return -7 * t }},
	{"f32_dcba", `{"register":"holding","address":6,"type":"float32","order":"DCBA"}`, func(t int64) any { return float64(float32(float64(t) / 2)) }},
	{"u32_badc", `{"register":"holding","address":8,"type":"uint32","order":"BADC"}`, func(t int64) any { return 3 * t }},
	{"i64", `{"register":"holding","address":10,"type":"int64"}`, func(t int64) any { return -1000003 * t }},
	{"u64_cdab", `{"register":"holding","address":14,"type":"uint64","order":"CDAB"}`, func(t int64) any { return 1000000007 * t }},
	{"f64_dcba", `{"register":"holding","address":18,"type":"float64","order":"DCBA"}`, func(t int64) any { return float64(t) / 8 }},
	{"str", `{"register":"holding","address":22,"type":"string","length":8}`, func(t int64) any { return fmt.Sprintf("T%06d", t) }},
	{"bit3", `{"register":"holding","address":26,"type":"bit","bit":3}`, func(t int64) any { return t%2 == 1 }},
	{"bit15", `{"register":"holding","address":26,"type":"bit","bit":15}`, func(t int64) any { return true }},
	{"i16_badc", `{"register":"holding","address":27,"type":"int16","order":"BADC"}`, func(t int64) any { return -(t % 1000) }},
	{"f32_badc", `{"register":"holding","address":28,"type":"float32","order":"BADC"}`, func(t int64) any { return float64(float32(-float64(t) / 4)) }},
	{"f64_badc", `{"register":"holding","address":30,"type":"float64","order":"BADC"}`, func(t int64) any { return 1.5 * float64(t) }},
	{"i64_dcba", `{"register":"holding","address":34,"type":"int64","order":"DCBA"}`, func(t int64) any { return -11 * t }},
	{"i32_dcba", `{"register":"holding","address":38,"type":"int32","order":"DCBA"}`, func(t int64) any { return -5 * t }},
}

// Read in other requests than the tick, so the server may have moved on
// (or, in another request before it, not yet) by a few ticks.
var liveOthers = []liveChannel{
	{"temp", `{"register":"input","address":0,"type":"float32"}`, func(t int64) any { return float64(t) / 2 }},
	{"ir2", `{"register":"input","address":2}`, func(t int64) any { return t % 1000 }},
	{"co0", `{"register":"coil","address":0}`, func(t int64) any { return t%2 == 1 }},
	{"di0", `{"register":"discrete","address":0}`, func(t int64) any { return t%2 == 0 }},
	{"di1", `{"register":"discrete","address":1}`, func(t int64) any { return true }},
}

func liveDevice(name string, unit int) *core.Device {
	var chans []*core.Channel
	for _, lc := range append(append([]liveChannel{}, liveHolding...), liveOthers...) {
		chans = append(chans, ch(lc.name, lc.settings))
	}
	return dev(name, unit, chans...)
}

// checkLive checks one poll of the live unit against the server's values
// and returns the tick it saw.
func checkLive(t *testing.T, rs map[string]core.Reading, slack int64) int64 {
	t.Helper()
	for name, r := range rs {
		if r.Quality != core.Good {
			t.Fatalf("%s: quality %s: %v", name, r.Quality, r.Err)
		}
	}
	tick, ok := rs["tick"].Value.(int64)
	if !ok {
		t.Fatalf("tick is %T %v, want int64", rs["tick"].Value, rs["tick"].Value)
	}
	for _, lc := range liveHolding {
		if got, want := rs[lc.name].Value, lc.want(tick); got != want {
			t.Errorf("%s at tick %d: got %v (%T), server holds %v (%T)", lc.name, tick, got, got, want, want)
		}
	}
	for _, lc := range liveOthers {
		got, match := rs[lc.name].Value, false
		for dt := -slack; dt <= slack && !match; dt++ {
			match = got == lc.want(tick+dt)
		}
		if !match {
			t.Errorf("%s: got %v, not what the server held near tick %d (%v)", lc.name, got, tick, lc.want(tick))
		}
	}
	return tick
}

// testLive polls the live unit until its values have changed a few times,
// checking every poll against what the server holds; a static unit on the
// same line must read right too, while a unit nobody serves times out.
func testLive(t *testing.T, settings string) {
	live, static := liveDevice("live", 1), dev("static", 2,
		ch("hr5", `{"register":"holding","address":5}`), ch("ir7", `{"register":"input","address":7}`),
		ch("co3", `{"register":"coil","address":3}`), ch("di3", `{"register":"discrete","address":3}`))
	ghost := dev("ghost", 3, ch("a", `{"register":"holding","address":0}`), ch("b", `{"register":"input","address":0}`))
	wr := func(name, s string) *core.Channel { c := ch(name, s); c.Writable = true; return c }
	scratch := dev("scratch", 1,
		wr("w32", `{"register":"holding","address":150,"type":"int32","order":"CDAB"}`),
		wr("wbit", `{"register":"holding","address":152,"type":"bit","bit":2}`),
		ch("wreg", `{"register":"holding","address":152}`),
		wr("wcoil", `{"register":"coil","address":9}`))
	c := newConn(t, settings, live, static, ghost, scratch)

	ticks := map[int64]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(ticks) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("values did not change over 60s: ticks seen %v", ticks)
		}
		ticks[checkLive(t, pollOK(t, c, live), 3)] = true
		s := pollOK(t, c, static)
		for name, want := range map[string]any{"hr5": int64(38), "ir7": int64(7), "co3": true, "di3": true} {
			if s[name].Quality != core.Good || s[name].Value != want {
				t.Fatalf("static %s: %v %v (%v), want %v", name, s[name].Quality, s[name].Value, s[name].Err, want)
			}
		}
	}

	// Writes on the same line, read back.
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	for name, v := range map[string]any{"w32": int64(-123456), "wbit": true, "wcoil": true} {
		if err := c.Write(wctx, scratch, name, v); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	if err := c.Write(wctx, ghost, "a", int64(1)); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("write to a read-only channel: %v", err)
	}
	w := pollOK(t, c, scratch)
	for name, want := range map[string]any{"w32": int64(-123456), "wbit": true, "wreg": int64(4), "wcoil": true} {
		if w[name].Value != want {
			t.Fatalf("after writing, %s reads %v (%v), want %v", name, w[name].Value, w[name].Err, want)
		}
	}

	g := pollOK(t, c, ghost)
	for _, name := range []string{"a", "b"} {
		if g[name].Quality != core.Bad || !errors.Is(g[name].Err, errTimeout) {
			t.Fatalf("ghost %s: %s %v, want bad with a timeout", name, g[name].Quality, g[name].Err)
		}
	}

	// A unit that never answers, polled without pause, must not starve the
	// others on the line: their polls stay good.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned here: stops with cancel
		defer wg.Done()
		for ctx.Err() == nil {
			c.Poll(ctx, ghost)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	for range 2 {
		// Each of the live unit's reads may queue behind one ghost timeout
		// (1s, 5 ticks).
		checkLive(t, pollOK(t, c, live), 20)
	}
}

func TestLiveTCP(t *testing.T) {
	t.Parallel() // mostly waiting for timeouts, each with its own server
	p := startPeer(t, peerOpts{tcp: true})
	testLive(t, fmt.Sprintf(`{"transport":"tcp","address":%q,"timeout":"1s"}`, p.tcp))
}

func TestLiveRTU(t *testing.T) {
	t.Parallel() // mostly waiting for timeouts, each with its own server
	p := startPeer(t, peerOpts{rtu: true})
	testLive(t, fmt.Sprintf(`{"transport":"rtu","port":%q,"baud":115200,"timeout":"1s"}`, p.tty))
}

func TestLiveRTUOverTCP(t *testing.T) {
	t.Parallel() // mostly waiting for timeouts, each with its own server
	p := startPeer(t, peerOpts{rtuTCP: true})
	testLive(t, fmt.Sprintf(`{"transport":"rtuovertcp","address":%q,"timeout":"1s"}`, p.rtuTCP))
}

// PollAppend, as the scheduler calls it, fills the slice it is given poll
// after poll, and what it returns is the server's values of that poll
// (values that stand still come back from the channel's last decode, those
// that changed are decoded anew), with every reading written: a channel
// that failed on this poll is bad, not the previous poll's good reading.
func TestPollAppendReusesBuffer(t *testing.T) {
	p := startPeer(t, peerOpts{tcp: true, tick: 50 * time.Millisecond})
	live := liveDevice("live", 1)
	c := newConn(t, fmt.Sprintf(`{"transport":"tcp","address":%q,"timeout":"5s"}`, p.tcp), live)
	var ap core.AppendPoller = c
	buf := make([]core.Reading, 0, 64)
	ticks := map[int64]bool{}
	for deadline := time.Now().Add(60 * time.Second); len(ticks) < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("values did not change over 60s: ticks seen %v", ticks)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rs, err := ap.PollAppend(ctx, live, buf[:0])
		cancel()
		if err != nil {
			t.Fatalf("PollAppend: %v", err)
		}
		if len(rs) != len(live.Channels) || &rs[:1][0] != &buf[:1][0] {
			t.Fatalf("PollAppend returned %d readings in another slice; want %d in the one given", len(rs), len(live.Channels))
		}
		m := map[string]core.Reading{}
		for i, r := range rs {
			if r.Channel != live.Channels[i].Name {
				t.Fatalf("reading %d is %s, want %s", i, r.Channel, live.Channels[i].Name)
			}
			m[r.Channel] = r
		}
		ticks[checkLive(t, m, 3)] = true
		buf = rs
	}
	// The server stops: every reading of the buffer says so.
	p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := ap.PollAppend(ctx, live, buf[:0])
	if err == nil {
		for _, r := range rs {
			if r.Quality != core.Bad {
				t.Fatalf("after the server stopped, %s is %s %v, want bad", r.Channel, r.Quality, r.Value)
			}
		}
	}
}
