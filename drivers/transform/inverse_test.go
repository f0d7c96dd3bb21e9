package transform

import (
	"strings"
	"testing"
)

func TestInverse(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		in     any
		want   any
		errHas string
	}{
		{"scale and offset", Spec{Scale: f64(0.1), Offset: f64(-40)}, 10.0, 500.0, ""},
		{"int input", Spec{Scale: f64(2)}, int64(8), 4.0, ""},
		{"go int input", Spec{Scale: f64(2)}, 8, 4.0, ""},
		{"no numeric steps passes bool", Spec{Rename: "x"}, true, true, ""},
		{"range and deadband have no inverse", Spec{Min: f64(0), Max: f64(1), Deadband: true}, 7.0, 7.0, ""},
		{"expr with inverse", Spec{Expr: "value * 9 / 5 + 32", Inverse: "(value - 32) * 5 / 9"}, 212.0, 100.0, ""},
		{"expr with inverse then scale", Spec{Scale: f64(10), Expr: "value + 1", Inverse: "value - 1"}, 21.0, 2.0, ""},
		{"bool through expr inverse", Spec{Expr: `value == "on"`, Inverse: `value ? "on" : "off"`}, true, "on", ""},
		{"expr without inverse", Spec{Expr: "value * 2"}, 1.0, nil, "not writable through an expression without an inverse"},
		{"scale zero", Spec{Scale: f64(0), Offset: f64(3)}, 3.0, nil, "not writable: scale is 0"},
		{"bool through scale", Spec{Scale: f64(2)}, true, nil, "cannot write a bool through scale/offset"},
		{"unsupported type", Spec{Scale: f64(2)}, []int{1}, nil, "write: value gave a []int"},
		{"inverse runtime error", Spec{Expr: "value", Inverse: "value * 2"}, "x", nil, "inverse: expr \"value * 2\""},
		{"tiny scale overflows", Spec{Scale: f64(1e-320)}, 1e300, nil, "not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Inverse(tt.in)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("Inverse(%v) = %v, %v; want error containing %q", tt.in, got, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inverse(%v): %v", tt.in, err)
			}
			if f, ok := got.(float64); ok {
				if w, ok := tt.want.(float64); !ok || f-w > 1e-9 || w-f > 1e-9 {
					t.Fatalf("Inverse(%v) = %v, want %v", tt.in, got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("Inverse(%v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

// TestInverseRoundTrip: writing the exported value back gives the raw value.
func TestInverseRoundTrip(t *testing.T) {
	c, err := New(Spec{Scale: f64(0.25), Offset: f64(3), Expr: "value * 2", Inverse: "value / 2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []float64{0, 1, -7, 1234.5} {
		r := rd(raw)
		if o := c.Apply(&r, t0); o.Verdict != Keep {
			t.Fatalf("Apply(%v): %v", raw, o)
		}
		back, err := c.Inverse(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if b := back.(float64); b-raw > 1e-9 || raw-b > 1e-9 {
			t.Fatalf("round trip of %v gave %v", raw, back)
		}
	}
}
