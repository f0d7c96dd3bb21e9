package main

import (
	"os"
	"testing"
)

// mainEnv makes the test binary run osgate's main instead of the tests:
// the fleet simulations run each gateway as a process of its own (a
// simulated device reboots by stopping its process).
const mainEnv = "OSGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}
