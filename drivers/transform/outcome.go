package transform

import "fmt"

// Verdict says what became of a reading.
type Verdict uint8

const (
	// Keep: the reading goes on to the sink.
	Keep Verdict = iota
	// Dropped: the reading is discarded; Outcome.Reason and Err say why.
	// The caller counts and logs it.
	Dropped
	// Suppressed: a deadband held the reading back because it did not
	// change enough. Nothing is wrong; the caller may count it.
	Suppressed
)

func (v Verdict) String() string {
	switch v {
	case Keep:
		return "keep"
	case Dropped:
		return "dropped"
	case Suppressed:
		return "suppressed"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Drop reasons, as used in Outcome.Reason and the dropped-readings metric.
const (
	ReasonRange     = "range"
	ReasonTransform = "transform"
)

// Outcome is the result of Chain.Apply.
type Outcome struct {
	Verdict Verdict
	// Reason is ReasonRange or ReasonTransform when Verdict is Dropped.
	Reason string
	// Err says why the reading was dropped.
	Err error
}
