package config

import (
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/transform"
)

func TestTransformSpec(t *testing.T) {
	c, err := Parse([]byte(chans(`
	  {"name": "a", "register": 1},
	  {"name": "b", "register": 1, "scale": 0.1, "offset": -3, "expr": "value * 2", "inverse": "value / 2",
	   "min": -10, "max": 10, "rename": "bee", "unit": "V", "deadband": {"percent": 5}, "decimals": 2},
	  {"name": "c", "register": 1, "deadband": {"absolute": 0.5, "max_silence": "1m"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	chs := c.Connectors[0].Devices[0].Channels
	if s := chs[0].TransformSpec(); s != (transform.Spec{}) {
		t.Fatalf("plain channel spec %+v", s)
	}
	s := chs[1].TransformSpec()
	if *s.Scale != 0.1 || *s.Offset != -3 || s.Expr != "value * 2" || s.Inverse != "value / 2" || *s.Min != -10 || *s.Max != 10 ||
		s.Rename != "bee" || s.Unit != "V" || !s.Deadband || s.DeadbandPct != 5 || s.DeadbandAbs != 0 || s.MaxSilence != 5*time.Minute || s.Decimals == nil || *s.Decimals != 2 {
		t.Fatalf("spec %+v", s)
	}
	if s := chs[2].TransformSpec(); !s.Deadband || s.DeadbandAbs != 0.5 || s.MaxSilence != time.Minute {
		t.Fatalf("spec %+v", s)
	}
	// Every parsed channel builds a chain.
	for i, ch := range chs {
		if _, err := transform.New(ch.TransformSpec()); err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
	}
}
