package appliance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

// byDeviceNaive is byDevice's contract written plainly: take the first
// reading left, then every later reading of its device whose channel the
// batch does not have yet; repeat.
func byDeviceNaive(rs []core.Reading) [][]string {
	left := slices.Clone(rs)
	var out [][]string
	for len(left) > 0 {
		dev := left[0].Device
		have := map[string]bool{}
		var batch []string
		var rest []core.Reading
		for _, r := range left {
			if r.Device == dev && !have[r.Channel] {
				have[r.Channel] = true
				batch = append(batch, r.Device+"/"+r.Channel+"="+fmt.Sprint(r.Value))
				continue
			}
			rest = append(rest, r)
		}
		out = append(out, batch)
		left = rest
	}
	return out
}

func batches(t *testing.T, rs []core.Reading) [][]string {
	t.Helper()
	var out [][]string
	err := byDevice(rs, func(dev string, batch []core.Reading) error {
		var b []string
		for _, r := range batch {
			if r.Device != dev {
				t.Fatalf("reading of %s in the batch of %s", r.Device, dev)
			}
			b = append(b, r.Device+"/"+r.Channel+"="+fmt.Sprint(r.Value))
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestByDevice(t *testing.T) {
	r := func(dev, ch string, v int) core.Reading { return core.Reading{Device: dev, Channel: ch, Value: v} }
	rs := []core.Reading{r("a", "x", 1), r("b", "x", 2), r("a", "y", 3), r("a", "x", 4), r("c", "z", 5), r("b", "x", 6), r("a", "y", 7)}
	got := batches(t, slices.Clone(rs))
	want := [][]string{{"a/x=1", "a/y=3"}, {"b/x=2"}, {"a/x=4", "a/y=7"}, {"c/z=5"}, {"b/x=6"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// Random mixes, small and large, against the plain contract.
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 16, 17, 40, 300, 3000} {
		for range 5 {
			rs := make([]core.Reading, n)
			for i := range rs {
				rs[i] = r(fmt.Sprint("d", rng.IntN(4)), fmt.Sprint("c", rng.IntN(n/3+1)), i)
			}
			want := byDeviceNaive(rs)
			got := batches(t, rs)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("n=%d: got %v\nwant %v", n, got, want)
			}
		}
	}
}

// TestByDeviceIsLinear: one message with N channels of one device costs
// time linear in N. A quadratic grouping made one JSON object of 80,000
// channels cost 13.6 s of CPU. Measured as a ratio in one run: 10 times
// the channels must cost well under 100 times the time (quadratic), so
// under 30 times passes.
func TestByDeviceIsLinear(t *testing.T) {
	cost := func(n int) float64 {
		rs := make([]core.Reading, n)
		for i := range rs {
			rs[i] = core.Reading{Device: "meter", Channel: fmt.Sprint("c", i), Value: i}
		}
		work := make([]core.Reading, n)
		res := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				copy(work, rs)
				byDevice(work, func(string, []core.Reading) error { return nil })
			}
		})
		return float64(res.T.Nanoseconds()) / float64(res.N)
	}
	small, large := cost(4000), cost(40000)
	ratio := large / small
	t.Logf("4,000 channels: %.0f µs, 40,000 channels: %.0f µs: ratio %.1f", small/1e3, large/1e3, ratio)
	if ratio > 30 {
		t.Errorf("10 times the channels cost %.0f times the time: grouping is not linear", ratio)
	}
}
