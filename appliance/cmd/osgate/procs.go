package main

import (
	"log/slog"
	"os"
	"runtime"
)

// The scheduler's setting for `osgate run`. The gateway waits on the
// network nearly all the time: a poll is a string of request/response
// round trips, an export a spool write, a publish and its
// acknowledgement. With one P per core each of those hand-offs between
// goroutines may wake another OS thread (a futex wake, a context switch)
// to run the goroutine that was woken, and that costs more CPU than the
// work it hands over; with one P the goroutine that readied another runs
// it next on the same thread. Measured at 1,000 Modbus registers ten
// times a second it costs about a seventh less CPU (docs/benchmarks.md,
// "Modbus polling"), with no loss of MQTT forwarding throughput on two
// cores. GOMAXPROCS in the environment, as Go documents it, wins.
const defaultMaxProcs = 1

// tuneProcs applies the default above where the environment sets
// nothing, and logs what runs.
func tuneProcs(log *slog.Logger) {
	env := os.Getenv("GOMAXPROCS")
	if env == "" {
		runtime.GOMAXPROCS(defaultMaxProcs)
	}
	log.Debug("scheduler settings", "gomaxprocs", runtime.GOMAXPROCS(0), "gomaxprocs_env", env, "cpus", runtime.NumCPU())
}
