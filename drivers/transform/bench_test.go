package transform

import (
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

func rd(v any) core.Reading { return core.Reading{Device: "meter-1", Channel: "voltage", Value: v} }

// BenchmarkApply measures one reading through typical chains, with
// allocations per reading. "repeating" feeds the same raw value each time
// (a static register), "changing" a new one.
func BenchmarkApply(b *testing.B) {
	cases := []struct {
		name string
		spec Spec
		v    any
	}{
		{"nil", Spec{}, 230.1},
		{"range+deadband+rename", Spec{Min: f64(0), Max: f64(500), Deadband: true, DeadbandAbs: 0.5, MaxSilence: time.Minute, Rename: "v", Unit: "V"}, 230.1},
		{"scale+offset/repeating", Spec{Scale: f64(0.1), Offset: f64(1)}, int64(2301)},
		{"scale+offset/changing", Spec{Scale: f64(0.1), Offset: f64(1)}, nil},
		{"scale+range+deadband/changing", Spec{Scale: f64(0.1), Min: f64(0), Max: f64(1e9), Deadband: true, DeadbandAbs: 0.5}, nil},
		{"scale+offset/float", Spec{Scale: f64(0.1), Offset: f64(1)}, 230.1},
		{"decimals", Spec{Decimals: intp(1)}, 230.14},
		{"expr", Spec{Expr: "value * 1.8 + 32"}, 21.5},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New(bc.spec)
			if err != nil {
				b.Fatal(err)
			}
			now := t0
			// Changing inputs are boxed before the clock starts, so that
			// only the chain's allocations count.
			inputs := make([]any, 1024)
			for i := range inputs {
				inputs[i] = int64(1000 + i)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				r := rd(bc.v)
				if bc.v == nil {
					r.Value = inputs[i%len(inputs)]
					i++
				}
				if o := c.Apply(&r, now); o.Verdict == Dropped {
					b.Fatal(o.Err)
				}
			}
		})
	}
}
