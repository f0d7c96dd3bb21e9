package mapping

import (
	"errors"
	"fmt"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// Set is a listener connector's mappings, tried in order (the first whose
// filter matches a topic takes the message), and its catalog.
type Set struct {
	maps    []*Mapping
	catalog *Catalog
}

// NewSet returns the set of maps with the catalog cat (nil: every reading
// passes under its discovered name).
func NewSet(maps []*Mapping, cat *Catalog) *Set {
	if cat == nil {
		cat = &Catalog{}
	}
	return &Set{maps: maps, catalog: cat}
}

// Reject is why a message gave no readings: Reason is one of the Reason
// constants.
type Reject struct {
	Reason string
	Err    error
}

func (r *Reject) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Reject) Unwrap() error { return r.Err }

// Scratch is reusable memory for Readings; one per goroutine.
type Scratch struct {
	caps []string
	out  []core.Reading
}

var errNoMapping = errors.New("no mapping's topic matches")

// Readings maps one message. It returns the readings to emit (valid until
// the next call with sc), how many readings the catalog dropped as not
// configured, and a *Reject when the message gives nothing to emit.
func (s *Set) Readings(topic string, payload []byte, now time.Time, sc *Scratch) ([]core.Reading, int, error) {
	var m *Mapping
	for _, cand := range s.maps {
		var ok bool
		if sc.caps, ok = cand.Match(topic, sc.caps); ok {
			m = cand
			break
		}
	}
	if m == nil {
		return nil, 0, &Reject{Reason: ReasonUnmatched, Err: errNoMapping}
	}
	rs, err := m.Readings(sc.caps, payload, now, sc.out[:0])
	sc.out = rs
	if err != nil {
		reason := ReasonPayload
		if errors.Is(err, ErrTooMany) {
			reason = ReasonTooLarge
		}
		return nil, 0, &Reject{Reason: reason, Err: err}
	}
	if len(rs) == 0 {
		return nil, 0, &Reject{Reason: ReasonEmpty, Err: fmt.Errorf("mapping %q: none of its channels is in the payload", m.filterText())}
	}
	kept := rs[:0]
	for _, r := range rs {
		if s.catalog.Apply(&r) {
			kept = append(kept, r)
		}
	}
	dropped := len(rs) - len(kept)
	if len(kept) == 0 {
		return nil, dropped, &Reject{Reason: ReasonUnconfigured, Err: fmt.Errorf("device %q (or its channels) is not configured and the connector takes configured devices only", rs[0].Device)}
	}
	return kept, dropped, nil
}

func (m *Mapping) filterText() string {
	if m.filter == nil {
		return ""
	}
	return m.filter.String()
}
