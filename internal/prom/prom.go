// Package prom is osgate's metrics plumbing: counters and gauges, with or
// without labels, on a registry served in the Prometheus text exposition
// format (version 0.0.4). It does what the gateway needs and no more: no
// histograms, summaries, exemplars or protobuf.
//
// Updates are cheap: a child looked up once (WithLabelValues) and kept is
// one atomic operation per Inc, Add or Set. A label lookup takes a read
// lock and a map lookup; creating a child takes the write lock.
//
// Each labelled family holds at most its bound of series (MaxSeries unless
// set with Bound). Label values that come from input (a device's name, a
// connector's) cannot grow memory without end: past the bound a new
// series still counts, on a child that is not served, and the family logs
// once that it is full.
package prom

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// MaxSeries is the default bound of the series of one labelled family.
// The gateway's label values are connector, device, cache and method names
// from its configuration and fixed reason words: a family that reaches it
// has far more devices than a gateway polls.
const MaxSeries = 10000

// Type is a family's TYPE line.
type Type string

// The types this package writes.
const (
	TypeCounter Type = "counter"
	TypeGauge   Type = "gauge"
)

// Collector is one metric family a Registry serves: a Counter, Gauge,
// CounterVec, GaugeVec or a Func.
type Collector interface {
	desc() *desc
	// appendSamples appends the family's sample lines, sorted.
	appendSamples(b []byte) []byte
}

// desc is what names a family.
type desc struct {
	name, help string
	typ        Type
	labels     []string // as declared
	order      []int    // indexes of labels sorted by name: the order written
}

func newDesc(name, help string, typ Type, labels []string) *desc {
	if !validName(name) {
		panic(fmt.Sprintf("prom: invalid metric name %q", name))
	}
	for i, l := range labels {
		if !validName(l) || strings.Contains(l, ":") || strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("prom: %s: invalid label name %q", name, l))
		}
		if slices.Contains(labels[:i], l) {
			panic(fmt.Sprintf("prom: %s: label %q twice", name, l))
		}
	}
	d := &desc{name: name, help: help, typ: typ, labels: slices.Clone(labels)}
	d.order = make([]int, len(labels))
	for i := range d.order {
		d.order[i] = i
	}
	slices.SortFunc(d.order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return d
}

// validName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// Counter is a value that only grows. Its methods are safe for concurrent
// use.
type Counter struct {
	d *desc // nil for a child of a vector
	// n holds whole increments (Inc, Add of whole numbers): one atomic add.
	n atomic.Uint64
	// frac holds the bits of the float64 sum of the other increments.
	frac atomic.Uint64
}

// NewCounter returns a counter without labels.
func NewCounter(name, help string) *Counter {
	return &Counter{d: newDesc(name, help, TypeCounter, nil)}
}

// Inc adds 1.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds v, which must not be negative (a counter that goes down is a
// bug in the caller: Add panics, as Prometheus's client does).
func (c *Counter) Add(v float64) {
	if v < 0 {
		panic(fmt.Sprintf("prom: counter decreased by %v", v))
	}
	if u := uint64(v); v < 1<<63 && float64(u) == v {
		c.n.Add(u)
		return
	}
	addFloat(&c.frac, v)
}

// Value is the counter's value.
func (c *Counter) Value() float64 {
	return float64(c.n.Load()) + math.Float64frombits(c.frac.Load())
}

func (c *Counter) desc() *desc { return c.d }

func (c *Counter) appendSamples(b []byte) []byte {
	return appendSample(b, c.d, nil, c.Value())
}

// Gauge is a value that goes up and down. Its methods are safe for
// concurrent use.
type Gauge struct {
	d    *desc
	bits atomic.Uint64
}

// NewGauge returns a gauge without labels.
func NewGauge(name, help string) *Gauge {
	return &Gauge{d: newDesc(name, help, TypeGauge, nil)}
}

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds v (negative: subtracts).
func (g *Gauge) Add(v float64) { addFloat(&g.bits, v) }

// Inc adds 1.
func (g *Gauge) Inc() { g.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.Add(-1) }

// Value is the gauge's value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) desc() *desc { return g.d }

func (g *Gauge) appendSamples(b []byte) []byte {
	return appendSample(b, g.d, nil, g.Value())
}

func addFloat(bits *atomic.Uint64, v float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Func is a family of one sample read when it is served (the Go runtime's
// and the process's figures).
type Func struct {
	d *desc
	f func() (float64, bool)
}

// NewGaugeFunc returns a gauge whose value f gives at each scrape.
func NewGaugeFunc(name, help string, f func() float64) *Func {
	return &Func{d: newDesc(name, help, TypeGauge, nil), f: func() (float64, bool) { return f(), true }}
}

// newFunc returns a family of type typ whose sample f gives, left out
// when f reports false (a figure the system did not give).
func newFunc(name, help string, typ Type, f func() (float64, bool)) *Func {
	return &Func{d: newDesc(name, help, typ, nil), f: f}
}

func (f *Func) desc() *desc { return f.d }

func (f *Func) appendSamples(b []byte) []byte {
	v, ok := f.f()
	if !ok {
		return b
	}
	return appendSample(b, f.d, nil, v)
}

// vec is the plumbing of CounterVec and GaugeVec: children by label
// values, bounded.
type vec[T any] struct {
	d     *desc
	max   int
	newT  func() *T
	value func(*T) float64

	mu       sync.RWMutex
	children map[string]*child[T]
	full     bool // logged that the bound was reached
	overflow *T   // counts past the bound, not served
}

type child[T any] struct {
	values []string
	m      *T
}

func newVec[T any](name, help string, typ Type, labels []string, newT func() *T, value func(*T) float64) *vec[T] {
	if len(labels) == 0 {
		panic(fmt.Sprintf("prom: %s: a vector needs labels", name))
	}
	return &vec[T]{d: newDesc(name, help, typ, labels), max: MaxSeries, newT: newT, value: value,
		children: map[string]*child[T]{}}
}

// key joins label values unambiguously: each value's length, then the
// value. It appends to buf (a stack buffer in the caller) so that a lookup
// of existing values does not allocate.
func key(buf []byte, values []string) []byte {
	if len(values) == 1 {
		return append(buf, values[0]...)
	}
	for _, v := range values {
		n := len(v)
		for n >= 0x80 {
			buf = append(buf, byte(n)|0x80)
			n >>= 7
		}
		buf = append(buf, byte(n))
		buf = append(buf, v...)
	}
	return buf
}

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.d.labels) {
		panic(fmt.Sprintf("prom: %s: %d label values for %d labels %v", v.d.name, len(values), len(v.d.labels), v.d.labels))
	}
	var buf [128]byte
	k := key(buf[:0], values)
	v.mu.RLock()
	c, ok := v.children[string(k)]
	v.mu.RUnlock()
	if ok {
		return c.m
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.children[string(k)]; ok {
		return c.m
	}
	if len(v.children) >= v.max {
		if !v.full {
			v.full = true
			slog.Warn("metrics: a metric has reached its bound of series; samples of further label values are counted but not served",
				"metric", v.d.name, "bound", v.max, "labels", v.d.labels)
		}
		if v.overflow == nil {
			v.overflow = v.newT()
		}
		return v.overflow
	}
	vals := make([]string, len(values))
	for i, s := range values {
		// The text format carries UTF-8: a value from input that is not
		// is served with U+FFFD for its bad bytes.
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
		} else {
			s = strings.Clone(s)
		}
		vals[i] = s
	}
	c = &child[T]{values: vals, m: v.newT()}
	v.children[string(k)] = c
	return c.m
}

// deletePartial drops the children whose labels match every pair of
// match, and returns how many it dropped.
func (v *vec[T]) deletePartial(match map[string]string) int {
	idx := make(map[int]string, len(match))
	for name, val := range match {
		i := slices.Index(v.d.labels, name)
		if i < 0 {
			return 0
		}
		idx[i] = val
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for k, c := range v.children {
		ok := true
		for i, val := range idx {
			if c.values[i] != val {
				ok = false
				break
			}
		}
		if ok {
			delete(v.children, k)
			n++
		}
	}
	return n
}

// lookup reads the child of values without making it.
func (v *vec[T]) lookup(values []string) (float64, bool) {
	if len(values) != len(v.d.labels) {
		return 0, false
	}
	var buf [128]byte
	k := key(buf[:0], values)
	v.mu.RLock()
	c, ok := v.children[string(k)]
	v.mu.RUnlock()
	if !ok {
		return 0, false
	}
	return v.value(c.m), true
}

func (v *vec[T]) reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.children)
}

func (v *vec[T]) desc() *desc { return v.d }

func (v *vec[T]) appendSamples(b []byte) []byte {
	v.mu.RLock()
	cs := make([]*child[T], 0, len(v.children))
	for _, c := range v.children {
		cs = append(cs, c)
	}
	v.mu.RUnlock()
	// Sorted by label values in the order the labels are written.
	slices.SortFunc(cs, func(a, c *child[T]) int {
		for _, i := range v.d.order {
			if r := strings.Compare(a.values[i], c.values[i]); r != 0 {
				return r
			}
		}
		return 0
	})
	for _, c := range cs {
		b = appendSample(b, v.d, c.values, v.value(c.m))
	}
	return b
}

// CounterVec is a family of counters by label values.
type CounterVec struct{ v *vec[Counter] }

// NewCounterVec returns a family of counters with labels.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{newVec(name, help, TypeCounter, labels, func() *Counter { return &Counter{} }, (*Counter).Value)}
}

// WithLabelValues returns the counter of values, one for each label in
// the order they were declared, made on first use. It panics on a wrong
// number of values (a bug in the caller).
func (c *CounterVec) WithLabelValues(values ...string) *Counter { return c.v.with(values) }

// DeletePartialMatch drops the counters whose labels have the values of
// match, and returns how many it dropped.
func (c *CounterVec) DeletePartialMatch(match map[string]string) int {
	return c.v.deletePartial(match)
}

// Reset drops every counter of the family.
func (c *CounterVec) Reset() { c.v.reset() }

// Bound sets how many series the family holds at most, and returns it.
func (c *CounterVec) Bound(n int) *CounterVec { c.v.max = n; return c }

func (c *CounterVec) desc() *desc                   { return c.v.d }
func (c *CounterVec) appendSamples(b []byte) []byte { return c.v.appendSamples(b) }

// GaugeVec is a family of gauges by label values.
type GaugeVec struct{ v *vec[Gauge] }

// NewGaugeVec returns a family of gauges with labels.
func NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{newVec(name, help, TypeGauge, labels, func() *Gauge { return &Gauge{} }, (*Gauge).Value)}
}

// WithLabelValues returns the gauge of values, one for each label in the
// order they were declared, made on first use. It panics on a wrong
// number of values (a bug in the caller).
func (g *GaugeVec) WithLabelValues(values ...string) *Gauge { return g.v.with(values) }

// DeletePartialMatch drops the gauges whose labels have the values of
// match, and returns how many it dropped.
func (g *GaugeVec) DeletePartialMatch(match map[string]string) int {
	return g.v.deletePartial(match)
}

// Reset drops every gauge of the family.
func (g *GaugeVec) Reset() { g.v.reset() }

// Bound sets how many series the family holds at most, and returns it.
func (g *GaugeVec) Bound(n int) *GaugeVec { g.v.max = n; return g }

func (g *GaugeVec) desc() *desc                   { return g.v.d }
func (g *GaugeVec) appendSamples(b []byte) []byte { return g.v.appendSamples(b) }
