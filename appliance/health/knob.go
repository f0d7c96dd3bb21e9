//go:build !testhook

package health

// testKnob is the test-only unhealthy knob (knob_testhook.go): always
// off in a release.
func testKnob() string { return "" }
