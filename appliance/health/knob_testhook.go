//go:build testhook

package health

import (
	"sync/atomic"
	"time"
)

// testUnhealthy is the reason every Model reports itself unhealthy, set by
// SetTestUnhealthy: a test-only knob, in binaries built with the tag
// testhook (make test, the amd64 VM test image) and never in a release.
var testUnhealthy atomic.Pointer[string]

// SetTestUnhealthy makes every Model of the process report Unhealthy with
// reason (a release that breaks after boot, for the fleet simulation);
// "" turns it off.
func SetTestUnhealthy(reason string) {
	if reason == "" {
		testUnhealthy.Store(nil)
		return
	}
	testUnhealthy.Store(&reason)
}

func testKnob() string {
	if p := testUnhealthy.Load(); p != nil {
		return *p
	}
	return ""
}

// knobLook: the knob tells no Model when it is set, so a report is to be
// made again within a second (Report.Next) to notice it.
const knobLook = time.Second
