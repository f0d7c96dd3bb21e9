package prom

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry is a set of families served together, sorted by name. Its
// methods are safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	byNam map[string]Collector
	names []string // sorted
	// last is the size of the last text written: the next scrape's
	// buffer starts at it.
	last atomic.Int64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byNam: map[string]Collector{}} }

// Register serves c. The same collector registered again is no error;
// another one under a name already taken is.
func (r *Registry) Register(c Collector) error {
	d := c.desc()
	if d == nil {
		return fmt.Errorf("prom: a child of a vector cannot be registered (register the vector)")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.byNam[d.name]; ok {
		if have == c {
			return nil
		}
		return fmt.Errorf("prom: metric %s registered twice by different collectors", d.name)
	}
	r.byNam[d.name] = c
	i, _ := slices.BinarySearch(r.names, d.name)
	r.names = slices.Insert(r.names, i, d.name)
	return nil
}

// MustRegister registers each of cs and panics on an error: two
// families of one name in the binary are a bug.
func (r *Registry) MustRegister(cs ...Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// AppendText appends every family in the text exposition format 0.0.4:
// HELP and TYPE lines, then the samples, families sorted by name and
// samples by label values. A labelled family with no series yet is left
// out.
func (r *Registry) AppendText(b []byte) []byte {
	r.mu.RLock()
	cs := make([]Collector, len(r.names))
	for i, n := range r.names {
		cs[i] = r.byNam[n]
	}
	r.mu.RUnlock()
	for _, c := range cs {
		d := c.desc()
		start := len(b)
		b = append(b, "# HELP "...)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = appendEscaped(b, d.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = append(b, d.typ...)
		b = append(b, '\n')
		head := len(b)
		b = c.appendSamples(b)
		if len(b) == head {
			b = b[:start]
		}
	}
	return b
}

// WriteText writes what AppendText appends to w.
func (r *Registry) WriteText(w io.Writer) error {
	_, err := w.Write(r.AppendText(nil))
	return err
}

// Handler serves the registry (the /metrics endpoint).
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b := r.AppendText(make([]byte, 0, r.last.Load()+1024))
		r.last.Store(int64(len(b)))
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
}

// appendSample appends one sample line: name, labels and value.
func appendSample(b []byte, d *desc, values []string, v float64) []byte {
	b = append(b, d.name...)
	if len(values) > 0 {
		b = append(b, '{')
		for j, i := range d.order {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, d.labels[i]...)
			b = append(b, `="`...)
			b = appendEscaped(b, values[i], true)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	return appendFloat(b, v)
}

// appendEscaped appends s escaped as the text format wants: a backslash
// and a line feed always (help text), a double quote too in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends v as the text format writes it (Go's shortest
// representation; +Inf, -Inf, NaN), then a line feed.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	case math.IsNaN(v):
		b = append(b, "NaN"...)
	default:
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '\n')
}

// Value is the value of the series of family name with labelValues (in
// the order the family declared its labels; none for a family without
// labels), and whether the family has it. It creates nothing: for tests
// and diagnostics.
func (r *Registry) Value(name string, labelValues ...string) (float64, bool) {
	r.mu.RLock()
	c, ok := r.byNam[name]
	r.mu.RUnlock()
	if !ok {
		return 0, false
	}
	switch c := c.(type) {
	case *Counter:
		return c.Value(), len(labelValues) == 0
	case *Gauge:
		return c.Value(), len(labelValues) == 0
	case *Func:
		v, ok := c.f()
		return v, ok && len(labelValues) == 0
	case *CounterVec:
		return c.v.lookup(labelValues)
	case *GaugeVec:
		return c.v.lookup(labelValues)
	}
	return 0, false
}
