package appliance

import (
	"testing"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/transform"
)

// TestObserveNoAllocation: recording a channel's last number for the
// technician's pages allocates nothing once its trend exists: it runs for
// every reading the gateway exports.
func TestObserveNoAllocation(t *testing.T) {
	dv := newDeviceValues(config.Device{}, []*core.Channel{{Name: "f"}, {Name: "i"}})
	now := time.Now()
	rf := core.Reading{Channel: "f", Value: 230.5, Time: now, Quality: core.Good}
	ri := core.Reading{Channel: "i", Value: int64(1234567), Time: now, Quality: core.Good}
	keep := transform.Outcome{Verdict: transform.Keep}
	dv.observe("f", &rf, keep, now)
	dv.observe("i", &ri, keep, now)
	allocs := testing.AllocsPerRun(1000, func() {
		dv.observe("f", &rf, keep, now)
		dv.observe("i", &ri, keep, now)
	})
	if allocs != 0 {
		t.Errorf("observe allocates %.1f times for two numeric readings, want 0", allocs)
	}
	if v := dv.byName["f"].value; v != 230.5 {
		t.Errorf("last value %v, want 230.5", v)
	}
	if v := dv.byName["i"].value; v != int64(1234567) {
		t.Errorf("last value %v, want 1234567", v)
	}
}
