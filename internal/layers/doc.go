// Package layers holds no code: its test checks the import rules that
// docs/design.md draws. Every package of the module sits in one layer, and
// imports only packages of its own layer or below:
//
//	6  commands     appliance/cmd/osgate, image/...
//	5  appliance    appliance, appliance/*, ota, fleet
//	4  config       config
//	3  config/source
//	2  drivers      drivers/* (and drivers/all, which lists them)
//	1  contract     drivers/core, drivers/transform
//	0  plumbing     internal/*, board
//
// A driver imports, of osgate, only the contract, board, drivers/mapping
// (shared by the listener drivers) and the plumbing meant for drivers
// (driverPlumbing in the test); never another driver or the gateway. Test
// files may import anything (an end-to-end test of a driver runs the
// whole gateway). A new package must be placed in the test's table.
package layers
