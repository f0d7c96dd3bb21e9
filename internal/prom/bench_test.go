package prom

import (
	"fmt"
	"net/http/httptest"
	"testing"
)

// BenchmarkIncKept is the hot path: a child looked up once and kept.
func BenchmarkIncKept(b *testing.B) {
	c := NewCounterVec("x_total", "x", "connector").WithLabelValues("modbus")
	for b.Loop() {
		c.Inc()
	}
}

// BenchmarkLookupInc looks the child up by two label values each time
// (a driver's Stats.Dropped, an RPC outcome).
func BenchmarkLookupInc(b *testing.B) {
	v := NewCounterVec("x_total", "x", "connector", "reason")
	for b.Loop() {
		v.WithLabelValues("modbus", "too_large").Inc()
	}
}

// BenchmarkScrape serves a registry of the gateway's shape: 30 families
// of 8 connectors, 40 devices in 5 states (about 450 series), and the
// runtime and process figures.
func BenchmarkScrape(b *testing.B) {
	r := NewRegistry()
	RegisterRuntime(r)
	for f := range 30 {
		v := NewCounterVec(fmt.Sprintf("osgate_f%d_total", f), "A family of the gateway's.", "connector", "reason")
		r.MustRegister(v)
		for c := range 8 {
			v.WithLabelValues(fmt.Sprint("conn", c), "range").Add(float64(f * c))
		}
	}
	st := NewGaugeVec("osgate_device_state", "States.", "connector", "device", "state")
	r.MustRegister(st)
	for d := range 40 {
		for _, s := range []string{"online", "degraded", "offline", "disabled", "unknown"} {
			st.WithLabelValues("conn0", fmt.Sprint("dev", d), s).Set(1)
		}
	}
	h := r.Handler()
	req := httptest.NewRequest("GET", "/metrics", nil)
	var n int
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		n = w.Body.Len()
	}
	b.ReportMetric(float64(n), "bytes/scrape")
}
