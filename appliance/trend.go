package appliance

import "math"

// point is one trend point: its slot (step 0: no point) and the value.
type point struct {
	slot
	v float64
}

// addTrend makes v at at the channel's newest trend point: the last value
// of its step. The tip of an earlier step goes into the ring first. A poll
// ten times a second changes the tip only, in the channel's own record;
// the ring takes a point once per step.
func addTrend(cv *chanValue, at slot, v float64) {
	if cv.tip.step != 0 && cv.tip.step != at.step {
		cv.trend.push(cv.tip)
	}
	cv.tip = point{at, v}
}

// trend is a channel's points of the steps before its tip, the
// trendLen-1 newest. The values are kept as float32 while every value the
// trend took is exactly one (integer registers of up to 24 bits, float32
// readings: most channels), else as float64; times as milliseconds from
// a center within 24.8 days. A channel's ring is 1 KB, 1.5 KB with
// float64 values, where it was 2 KB with both kept whole: at a thousand
// channels, half the gateway's live memory. Nothing is rounded.
type trend struct {
	f32 *ring[float32]
	f64 *ring[float64]
}

func (tr *trend) push(p point) {
	if tr.f64 == nil && float64(float32(p.v)) == p.v {
		if tr.f32 == nil {
			tr.f32 = &ring[float32]{center: p.ms}
		}
		tr.f32.push(p.ms, float32(p.v))
		return
	}
	switch {
	case tr.f32 != nil:
		tr.f64, tr.f32 = widen(tr.f32), nil
	case tr.f64 == nil:
		tr.f64 = &ring[float64]{center: p.ms}
	}
	tr.f64.push(p.ms, p.v)
}

// len is the number of points.
func (tr *trend) len() int {
	switch {
	case tr.f64 != nil:
		return int(tr.f64.n)
	case tr.f32 != nil:
		return int(tr.f32.n)
	}
	return 0
}

// at is the i-th oldest point's time and value; 0 <= i < len().
func (tr *trend) at(i int) (int64, float64) {
	if tr.f64 != nil {
		return tr.f64.at(i)
	}
	ms, v := tr.f32.at(i)
	return ms, float64(v)
}

// clone is a copy that shares nothing with tr.
func (tr trend) clone() trend {
	if tr.f32 != nil {
		r := *tr.f32
		tr.f32 = &r
	}
	if tr.f64 != nil {
		r := *tr.f64
		tr.f64 = &r
	}
	return tr
}

// ring is the trend's ring of points: times as dt milliseconds from
// center, values as T.
type ring[T float32 | float64] struct {
	center  int64
	dt      [trendLen - 1]int32
	v       [trendLen - 1]T
	n, next uint8
}

// The ring's counts are bytes.
const _ = uint8(trendLen - 1)

func (r *ring[T]) push(ms int64, v T) {
	d := ms - r.center
	if d < math.MinInt32 || d > math.MaxInt32 {
		r.recenter(ms)
		d = 0
	}
	r.dt[r.next], r.v[r.next] = int32(d), v
	r.next = uint8((int(r.next) + 1) % len(r.dt))
	r.n = uint8(min(int(r.n)+1, len(r.dt)))
}

func (r *ring[T]) at(i int) (int64, T) {
	k := (int(r.next) + len(r.dt) - int(r.n) + i) % len(r.dt)
	return r.center + int64(r.dt[k]), r.v[k]
}

// recenter makes ms the ring's center (a point 24.8 days or more from the
// old one: a slow channel's or a clock set far), dropping the points that
// are as far from ms.
func (r *ring[T]) recenter(ms int64) {
	old := *r
	*r = ring[T]{center: ms}
	for i := range int(old.n) {
		if at, v := old.at(i); at-ms >= math.MinInt32 && at-ms <= math.MaxInt32 {
			r.push(at, v)
		}
	}
}

// widen is r with float64 values.
func widen(r *ring[float32]) *ring[float64] {
	w := &ring[float64]{center: r.center, dt: r.dt, n: r.n, next: r.next}
	for i, v := range r.v {
		w.v[i] = float64(v)
	}
	return w
}

// trendPoints returns at most max points of cv's trend (max <= 0: none),
// oldest first, thinned evenly when there are more; the newest is always
// among them.
func (cv *chanValue) trendPoints(max int) [][2]float64 {
	if max <= 0 || cv.tip.step == 0 {
		return nil
	}
	kept := cv.trend.len()
	n := kept + 1 // the ring's and the tip
	k := min(max, n)
	out := make([][2]float64, 0, k)
	for j := range k {
		i := n - 1 // the newest
		if k > 1 {
			i = j * (n - 1) / (k - 1) // evenly from the oldest
		}
		if i == kept {
			out = append(out, [2]float64{float64(cv.tip.ms), cv.tip.v})
			continue
		}
		ms, v := cv.trend.at(i)
		out = append(out, [2]float64{float64(ms), v})
	}
	return out
}
