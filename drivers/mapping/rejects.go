package mapping

import (
	"errors"
	"hash/maphash"
	"log/slog"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/lograte"
	"github.com/osgate/osgate/internal/prom"
	"github.com/osgate/osgate/internal/redact"
)

// rejected counts messages a listener could not turn into readings; the
// gateway serves it once a connector registers it (NewRejects).
var rejected = prom.NewCounterVec("osgate_messages_rejected_total",
	"Messages a listener connector could not turn into readings, by reason: unmatched (no mapping), payload (does not parse or fit), empty (no values), unconfigured (device or channel not configured), too_large (payload over max_payload or max_body, or more readings than max_channels); HTTP ingest also auth (API key refused).",
	"connector", "reason")

// Reasons a message is rejected.
const (
	ReasonUnmatched    = "unmatched"
	ReasonPayload      = "payload"
	ReasonEmpty        = "empty"
	ReasonUnconfigured = "unconfigured"
	// ReasonTooLarge: over a size limit (payload bytes, readings of one
	// message).
	ReasonTooLarge = "too_large"
)

// maxLogged bounds how many topics a Rejects remembers having logged
// (least recently rejected forgotten first), so topics that carry ids
// cannot grow memory without end. The topics are remembered by a hash,
// never by their text: a 60 KB topic costs 8 bytes.
const maxLogged = 1024

// logBurst lines a minute at most, whatever the topics: a flood of
// distinct topics is counted, and the count of topics not logged rides on
// the next line written.
const logBurst = 10

// seed makes the topic hashes of this process unpredictable, so nobody can
// make two topics collide on purpose (a collision would only hide one log
// line).
var seed = maphash.MakeSeed()

// Rejects counts rejected messages of one connector and logs each topic
// (or ingest path) once per reason, so a chatty broker cannot flood the
// log; the topic is clipped in the log line.
type Rejects struct {
	connector string
	log       *slog.Logger
	logged    *lograte.Keyed[uint64]
	limit     lograte.Limit
}

// NewRejects returns the rejects of a connector, counted on stats (nil:
// counted, not served).
func NewRejects(connector string, log *slog.Logger, stats core.Stats) *Rejects {
	if stats == nil {
		stats = core.NoStats{}
	}
	stats.Register(rejected)
	return &Rejects{
		connector: connector, log: log,
		logged: lograte.NewKeyed[uint64](maxLogged, 0, stats.Cache("rejects_logged")),
		limit:  lograte.Limit{Burst: logBurst, Window: time.Minute},
	}
}

// Reject counts one message and logs it the first time topic is rejected
// for reason (within the last maxLogged topics and the log's rate).
func (r *Rejects) Reject(topic, reason string, err error) {
	rejected.WithLabelValues(r.connector, reason).Inc()
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(reason)
	h.WriteByte(0)
	h.WriteString(topic)
	now := time.Now()
	if !r.logged.Allow(h.Sum64(), now) {
		return
	}
	ok, suppressed := r.limit.Allow(now)
	if !ok {
		return
	}
	msg := "message rejected; further ones on this topic are only counted"
	if err == nil {
		err = errors.New(reason)
	}
	attrs := []any{"topic", clip(topic), "reason", reason, "err", clipErr(err)}
	if suppressed > 0 {
		attrs = append(attrs, "topics_not_logged", suppressed)
	}
	r.log.Warn(msg, attrs...)
}

// clipErr bounds an error's text in a log line: it may quote names taken
// from the message.
func clipErr(err error) string { return redact.Clip(err.Error(), 512) }

// Rejected is the count of a connector's rejected messages for reason (for
// tests and diagnostics).
func Rejected(connector, reason string) float64 {
	return rejected.WithLabelValues(connector, reason).Value()
}
