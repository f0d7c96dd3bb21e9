package modbus

import (
	"fmt"
	"sort"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

// minReads is the fewest reads covering channels (address, width) of one
// kind, by dynamic programming over every way to cut the address-sorted
// channels into runs: independent of planReads' greedy scan. A read covers
// a contiguous address range, so any plan is such a cut.
func minReads(addrs, widths []int, maxGap, limit int) int {
	type item struct{ a, w int }
	its := make([]item, len(addrs))
	for i := range addrs {
		its[i] = item{addrs[i], widths[i]}
	}
	sort.Slice(its, func(i, j int) bool { return its[i].a < its[j].a })
	n := len(its)
	best := make([]int, n+1) // best[i]: fewest reads for the first i channels
	for i := 1; i <= n; i++ {
		best[i] = n + 1
		end := 0
		for j := i - 1; j >= 0; j-- { // channels j..i-1 in one read
			end = max(end, its[j].a+its[j].w)
			ok := end-its[j].a <= limit
			for k := j; k < i-1 && ok; k++ {
				reach := 0
				for m := j; m <= k; m++ {
					reach = max(reach, its[m].a+its[m].w)
				}
				ok = its[k+1].a-reach <= maxGap
			}
			if ok {
				best[i] = min(best[i], best[j]+1)
			}
		}
	}
	return best[n]
}

func TestPlanReadsMatchesMinimum(t *testing.T) {
	for seed := uint32(1); seed <= 200; seed++ {
		addrs, widths := scattered(seed, 40, 600)
		var chans []channel
		for i := range addrs {
			chans = append(chans, channel{kind: kindHolding, addr: uint16(addrs[i]), width: widths[i]})
		}
		for _, gap := range []int{0, 1, 5, 20, 60} {
			for _, limit := range []int{125, 16} {
				got := planReads(chans, gap, limit)
				if want := minReads(addrs, widths, gap, limit); len(got) != want {
					t.Fatalf("seed %d gap %d limit %d: %d reads, minimum is %d: %v", seed, gap, limit, len(got), want, got)
				}
				covered := 0
				for _, r := range got {
					if r.count > limit || r.count < 1 {
						t.Fatalf("read %v exceeds %d registers", r, limit)
					}
					for _, i := range r.chans {
						c := chans[i]
						if int(c.addr) < int(r.start) || int(c.addr)+c.width > int(r.start)+r.count {
							t.Fatalf("read %v does not cover channel at %d+%d", r, c.addr, c.width)
						}
						covered++
					}
				}
				if covered != len(chans) {
					t.Fatalf("%d channels covered, want %d", covered, len(chans))
				}
			}
		}
	}
}

func TestPlanReadsKindsAndBits(t *testing.T) {
	chans := []channel{
		{kind: kindCoil, addr: 0, width: 1}, {kind: kindCoil, addr: 1999, width: 1}, {kind: kindCoil, addr: 2000, width: 1},
		{kind: kindInput, addr: 5, width: 2}, {kind: kindHolding, addr: 5, width: 1}, {kind: kindDiscrete, addr: 7, width: 1},
		{kind: kindDiscrete, addr: 8 + 16*10, width: 1}, {kind: kindDiscrete, addr: 330, width: 1},
	}
	// 10 registers of gap allow 160 bits.
	got := planReads(chans, 10, 125)
	want := []string{"coil 0+1", "coil 1999+2", "discrete 7+162", "discrete 330+1", "holding 5+1", "input 5+2"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("read %d: %v, want %s", i, got[i], want[i])
		}
	}
	// At most 2000 bits per read.
	chans = nil
	for a := 0; a <= 2000; a += 100 {
		chans = append(chans, channel{kind: kindCoil, addr: uint16(a), width: 1})
	}
	if got := fmt.Sprint(planReads(chans, 125, 125)); got != "[coil 0+1901 coil 2000+1]" {
		t.Errorf("2000-bit limit: got %s", got)
	}
}

// scattered returns n distinct, non-overlapping channels (width 1, 2 or 4)
// spread over [0, span), from a small deterministic generator.
func scattered(seed uint32, n, span int) (addrs, widths []int) {
	used := make([]bool, span+4)
	x := seed*2654435761 + 1
	next := func() int { x = x*1664525 + 1013904223; return int(x >> 8) }
	for len(addrs) < n {
		a, w := next()%span, []int{1, 1, 2, 4}[next()%4]
		free := true
		for i := a; i < a+w; i++ {
			free = free && !used[i]
		}
		if !free {
			continue
		}
		for i := a; i < a+w; i++ {
			used[i] = true
		}
		addrs, widths = append(addrs, a), append(widths, w)
	}
	return addrs, widths
}

// TestRequestCountScattered polls a device with 50 scattered channels and
// counts, in the server's own log, the reads it received: exactly the
// minimum for each gap setting, each within 125 registers, every value right.
func TestRequestCountScattered(t *testing.T) {
	p := startPeer(t, peerOpts{tcp: true})
	addrs, widths := scattered(7, 50, 1000)
	var chans []*core.Channel
	for i, a := range addrs {
		typ := map[int]string{1: "uint16", 2: "uint32", 4: "uint64"}[widths[i]]
		chans = append(chans, ch(fmt.Sprintf("c%d", a), fmt.Sprintf(`{"register":"holding","address":%d,"type":%q}`, a, typ)))
	}
	seen := 0
	prev := -1
	for _, gap := range []int{0, 2, 10, 30, 125} {
		d := dev(fmt.Sprintf("meter-gap-%d", gap), 2, chans...)
		c := newConn(t, fmt.Sprintf(`{"transport":"tcp","address":%q,"max_gap":%d}`, p.tcp, gap), d)
		rs := pollOK(t, c, d)
		for i, a := range addrs {
			var want int64
			for r := range widths[i] {
				want = want<<16 | int64((7*(a+r)+3)&0xFFFF)
			}
			if r := rs[fmt.Sprintf("c%d", a)]; r.Quality != core.Good || r.Value != want {
				t.Fatalf("gap %d: channel at %d: %v %v (%v), want %d", gap, a, r.Quality, r.Value, r.Err, want)
			}
		}
		log := p.requests(t, 2)
		got := log[seen:]
		seen = len(log)
		want := minReads(addrs, widths, gap, 125)
		t.Logf("max_gap %d: %d reads (minimum %d)", gap, len(got), want)
		if len(got) != want {
			t.Fatalf("max_gap %d: server received %d reads, the minimum is %d:\n%v", gap, len(got), want, got)
		}
		for _, l := range got {
			var u, fc, a, n int
			if _, err := fmt.Sscanf(l, "unit=%d fc=%d addr=%d count=%d", &u, &fc, &a, &n); err != nil || fc != 3 || n > 125 {
				t.Fatalf("unexpected request %q (%v)", l, err)
			}
		}
		if prev >= 0 && len(got) > prev {
			t.Fatalf("a larger gap needed more reads: %d > %d", len(got), prev)
		}
		prev = len(got)
	}
	if prev >= 50 {
		t.Fatalf("merging never happened")
	}
}
