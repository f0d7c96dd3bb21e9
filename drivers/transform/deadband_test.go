package transform

import (
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// step is one reading fed to a deadband chain, at t0 + at.
type step struct {
	at     time.Duration
	value  any
	q      core.Quality
	report bool
}

func TestDeadband(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		steps []step
	}{
		{
			name: "absolute",
			spec: Spec{Deadband: true, DeadbandAbs: 0.5},
			steps: []step{
				{0, 10.0, core.Good, true}, // first is always reported
				{1, 10.4, core.Good, false},
				{2, 9.6, core.Good, false},
				{3, 10.5, core.Good, true}, // exactly the deadband counts
				{4, 10.1, core.Good, false},
				{5, 10.0, core.Good, true},
			},
		},
		{
			name: "percent of the last reported value",
			spec: Spec{Deadband: true, DeadbandPct: 10},
			steps: []step{
				{0, 100.0, core.Good, true},
				{1, 109.0, core.Good, false},
				{2, 91.0, core.Good, false},
				{3, 110.0, core.Good, true},
				{4, 120.0, core.Good, false}, // 10% of 110 is 11
				{5, 121.0, core.Good, true},
			},
		},
		{
			name: "percent from zero reports any change",
			spec: Spec{Deadband: true, DeadbandPct: 10},
			steps: []step{
				{0, 0.0, core.Good, true},
				{1, 0.0, core.Good, false},
				{2, 0.001, core.Good, true},
			},
		},
		{
			name: "zero deadband reports on change",
			spec: Spec{Deadband: true},
			steps: []step{
				{0, int64(5), core.Good, true},
				{1, int64(5), core.Good, false},
				{2, int64(6), core.Good, true},
				{3, 6.0, core.Good, false}, // same number, other type
			},
		},
		{
			name: "max silence forces a report",
			spec: Spec{Deadband: true, DeadbandAbs: 100, MaxSilence: 10 * time.Second},
			steps: []step{
				{0, 1.0, core.Good, true},
				{9 * time.Second, 1.0, core.Good, false},
				{10 * time.Second, 1.0, core.Good, true},
				{15 * time.Second, 1.0, core.Good, false},
				{20 * time.Second, 1.0, core.Good, true},
			},
		},
		{
			name: "no max silence never forces",
			spec: Spec{Deadband: true, DeadbandAbs: 100},
			steps: []step{
				{0, 1.0, core.Good, true},
				{24 * time.Hour, 1.0, core.Good, false},
			},
		},
		{
			name: "quality change is reported; bad is never suppressed",
			spec: Spec{Deadband: true, DeadbandAbs: 100},
			steps: []step{
				{0, 1.0, core.Good, true},
				{1, 1.0, core.Uncertain, true},
				{2, 1.0, core.Uncertain, false},
				{3, nil, core.Bad, true},
				{4, nil, core.Bad, true},
				{5, 1.0, core.Uncertain, true},
				{6, 1.0, core.Good, true},
			},
		},
		{
			name: "bools and strings report on change",
			spec: Spec{Deadband: true, DeadbandAbs: 5},
			steps: []step{
				{0, true, core.Good, true},
				{1, true, core.Good, false},
				{2, false, core.Good, true},
				{3, "on", core.Good, true},
				{4, "on", core.Good, false},
				{5, "off", core.Good, true},
				{6, 1.0, core.Good, true},
			},
		},
		{
			name: "deadband applies after scale",
			spec: Spec{Scale: f64(0.01), Deadband: true, DeadbandAbs: 1},
			steps: []step{
				{0, int64(1000), core.Good, true},
				{1, int64(1099), core.Good, false},
				{2, int64(1100), core.Good, true},
			},
		},
		{
			name: "range-dropped readings do not move the deadband",
			spec: Spec{Max: f64(50), Deadband: true, DeadbandAbs: 5},
			steps: []step{
				{0, 10.0, core.Good, true},
				{1, 99.0, core.Good, false}, // dropped, checked below
				{2, 14.0, core.Good, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				r := core.Reading{Value: s.value, Quality: s.q}
				o := c.Apply(&r, t0.Add(s.at))
				if got := o.Verdict == Keep; got != s.report {
					t.Fatalf("step %d (%v at %v): reported=%v (%v %v), want %v", i, s.value, s.at, got, o.Verdict, o.Err, s.report)
				}
				if !s.report && o.Verdict == Dropped && o.Reason != ReasonRange {
					t.Fatalf("step %d: dropped for %q: %v", i, o.Reason, o.Err)
				}
			}
		})
	}
}
