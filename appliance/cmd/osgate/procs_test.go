package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
)

// tuneProcs runs osgate on one P when the environment says nothing, and
// leaves the runtime's setting (GOMAXPROCS) when it does.
func TestTuneProcs(t *testing.T) {
	procs0 := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs0) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(3)
	tuneProcs(log)
	if got := runtime.GOMAXPROCS(0); got != defaultMaxProcs {
		t.Errorf("GOMAXPROCS without the variable = %d, want %d", got, defaultMaxProcs)
	}

	// What the runtime took from the environment at start stays.
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	tuneProcs(log)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("GOMAXPROCS with GOMAXPROCS=3 = %d, want it left at 3", got)
	}
}
