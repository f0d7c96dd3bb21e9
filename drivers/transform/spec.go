// Package transform applies a channel's transforms to readings, in order:
// scale/offset, expression, decimals, range filter, deadband (with a
// max-silence heartbeat), rename and unit. A chain is built once per channel and keeps
// the deadband's state.
package transform

import "time"

// Spec is one channel's transforms as configured. Every field is optional.
type Spec struct {
	Scale  *float64
	Offset *float64
	// Expr is an expr-lang expression of `value` (and `device`, `channel`);
	// Inverse its inverse, for writes.
	Expr    string
	Inverse string
	// Decimals rounds a float to this many decimal places (0 to 15),
	// after scale/offset and the expression.
	Decimals *int
	// Min and Max bound the value; a reading outside is dropped.
	Min, Max *float64
	// Deadband: report only on a change of at least DeadbandAbs (or
	// DeadbandPct percent of the last reported value; with both 0, any
	// change), or when MaxSilence has passed since the last report (0:
	// never). Without Deadband the three numbers are ignored.
	Deadband    bool
	DeadbandAbs float64
	DeadbandPct float64
	MaxSilence  time.Duration
	// Rename replaces the channel name; Unit the unit.
	Rename string
	Unit   string
}
