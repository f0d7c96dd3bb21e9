package mapping

import (
	"log/slog"
	"sync"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// rejected counts messages a listener could not turn into readings.
var rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "osgate_messages_rejected_total",
	Help: "Messages a listener connector could not turn into readings, by reason: unmatched (no mapping), payload (does not parse or fit), empty (no values), unconfigured (device or channel not configured); HTTP ingest also auth (API key refused) and too_large (body over max_body).",
}, []string{"connector", "reason"})

func init() { metrics.Registry.MustRegister(rejected) }

// Reasons a message is rejected.
const (
	ReasonUnmatched    = "unmatched"
	ReasonPayload      = "payload"
	ReasonEmpty        = "empty"
	ReasonUnconfigured = "unconfigured"
)

// maxLogged bounds how many topics a Rejects remembers having logged, so
// topics that carry ids cannot grow memory without end.
const maxLogged = 4096

// Rejects counts rejected messages of one connector and logs each topic
// (or ingest path) once per reason, so a chatty broker cannot flood the log.
type Rejects struct {
	connector string
	log       *slog.Logger

	mu     sync.Mutex
	logged map[string]struct{}
	full   bool
}

// NewRejects returns the rejects of a connector.
func NewRejects(connector string, log *slog.Logger) *Rejects {
	return &Rejects{connector: connector, log: log, logged: map[string]struct{}{}}
}

// Reject counts one message and logs it the first time topic is rejected
// for reason.
func (r *Rejects) Reject(topic, reason string, err error) {
	rejected.WithLabelValues(r.connector, reason).Inc()
	key := reason + "\x00" + topic
	r.mu.Lock()
	_, seen := r.logged[key]
	first := !seen && len(r.logged) < maxLogged
	if first {
		r.logged[key] = struct{}{}
	}
	full := !first && !seen && !r.full
	if full {
		r.full = true
	}
	r.mu.Unlock()
	switch {
	case first:
		r.log.Warn("message rejected; further ones on this topic are only counted", "topic", clip(topic), "reason", reason, "err", err)
	case full:
		r.log.Warn("message rejected; too many topics rejected to log each, only counting from now on", "topic", clip(topic), "reason", reason, "err", err)
	}
}

// Rejected is the count of a connector's rejected messages for reason (for
// tests and diagnostics).
func Rejected(connector, reason string) float64 {
	var m dto.Metric
	if err := rejected.WithLabelValues(connector, reason).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
