//go:build !testhook

package health

// testKnob is the test-only unhealthy knob (knob_testhook.go): always
// off in a release.
func testKnob() string { return "" }

// knobLook is how often a report must be made again to notice the knob
// (Report.Next): never in a release.
const knobLook = 0
