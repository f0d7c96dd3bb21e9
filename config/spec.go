package config

import "github.com/osgate/osgate/drivers/transform"

// TransformSpec is the channel's transforms in the form transform.New
// takes. A deadband without max_silence gets the default of 5 minutes
// (Parse has already filled it in).
func (ch Channel) TransformSpec() transform.Spec {
	s := transform.Spec{
		Scale:    ch.Scale,
		Offset:   ch.Offset,
		Expr:     ch.Expr,
		Inverse:  ch.Inverse,
		Decimals: ch.Decimals,
		Min:      ch.Min,
		Max:      ch.Max,
		Rename:   ch.Rename,
		Unit:     ch.Unit,
	}
	if db := ch.Deadband; db != nil {
		s.Deadband = true
		s.DeadbandAbs = db.Absolute
		s.DeadbandPct = db.Percent
		s.MaxSilence = defaultMaxSilence
		if db.MaxSilence != nil {
			s.MaxSilence = *db.MaxSilence
		}
	}
	return s
}
