package modbus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gridx "github.com/grid-x/modbus"

	"github.com/osgate/osgate/drivers/core"
)

// TestExceptionSplit reads a block with three holes (the server answers
// exception 2 to any read touching HR900, HR905 or HR950): only those
// channels are bad, the split is remembered for the next poll, and the
// merged read is tried again after "reprobe".
func TestExceptionSplit(t *testing.T) {
	p := startPeer(t, peerOpts{tcp: true})
	addrs := []int{890, 895, 900, 903, 905, 910, 920, 930, 940, 950, 955, 960}
	holes := map[int]bool{900: true, 905: true, 950: true}
	var chans []*core.Channel
	for _, a := range addrs {
		chans = append(chans, ch(fmt.Sprintf("hr%d", a), fmt.Sprintf(`{"register":"holding","address":%d,"type":"int16"}`, a)))
	}
	d := dev("holey", 1, chans...)
	c := newConn(t, fmt.Sprintf(`{"transport":"tcp","address":%q,"max_gap":10,"reprobe":"1s"}`, p.tcp), d)

	check := func() {
		t.Helper()
		rs := pollOK(t, c, d)
		for _, a := range addrs {
			r := rs[fmt.Sprintf("hr%d", a)]
			var ex *gridx.Error
			switch {
			case holes[a] && (r.Quality != core.Bad || !errors.As(r.Err, &ex) || ex.ExceptionCode != 2):
				t.Fatalf("hole hr%d: %s %v, want bad with exception 2", a, r.Quality, r.Err)
			case !holes[a] && (r.Quality != core.Good || r.Value != int64(0)):
				t.Fatalf("hr%d: %s %v %v, want good 0", a, r.Quality, r.Value, r.Err)
			}
		}
	}
	reads := func(n0 int) []string { return p.requests(t, 1)[n0:] }

	check()
	first := reads(0)
	if len(first) < 2 || !strings.Contains(first[0], "addr=890 count=71") {
		t.Fatalf("first poll should try the merged read 890+71, then split: %v", first)
	}
	n := len(p.requests(t, 1))
	check()
	second := reads(n)
	t.Logf("first poll: %d reads (bisecting), second: %d (remembered)", len(first), len(second))
	if len(second) >= len(first) {
		t.Fatalf("second poll sent %d reads, not fewer than the %d of the split: the split was not remembered\n%v", len(second), len(first), second)
	}
	for _, l := range second {
		if strings.Contains(l, "count=71") {
			t.Fatalf("second poll retried the merged read before reprobe: %v", second)
		}
	}
	// Each hole is read alone; every other read avoids all holes.
	alone := 0
	for _, l := range second {
		var u, fc, a, cnt int
		fmt.Sscanf(l, "unit=%d fc=%d addr=%d count=%d", &u, &fc, &a, &cnt)
		if holes[a] && cnt == 1 {
			alone++
		}
	}
	if alone != len(holes) {
		t.Fatalf("want each of the %d holes read alone, got %d: %v", len(holes), alone, second)
	}

	time.Sleep(1100 * time.Millisecond) // let "reprobe" (1s) pass; not a speed assumption
	n = len(p.requests(t, 1))
	check()
	if third := reads(n); !strings.Contains(third[0], "addr=890 count=71") {
		t.Fatalf("after reprobe the merged read should be tried first: %v", third)
	}
}
