package main

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The garbage collector's settings for `osgate run`. Go's defaults suit a
// server: the heap grows to twice what is live before it is collected, and
// nothing bounds it. On the appliance memory is the Pi's, shared with
// Mosquitto, and what osgate keeps live is small and steady, so it
// collects at 1.5× (GOGC=50) and keeps its memory under a soft limit of a
// quarter of the machine's, or of its container's limit (GOMEMLIMIT; within it the collector works
// harder, beyond it never more than half the CPU). GOGC and GOMEMLIMIT in
// the environment, as Go documents them, win over both.
const (
	defaultGCPercent   = 50
	memoryLimitShare   = 4 // a quarter of MemTotal
	minimumMemoryLimit = 64 << 20
)

// tuneMemory applies the defaults above where the environment sets
// nothing, and logs what runs.
func tuneMemory(log *slog.Logger) {
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	limit := os.Getenv("GOMEMLIMIT")
	if limit == "" {
		if total := machineMemory("/proc/meminfo", "/sys/fs/cgroup/memory.max"); total > 0 {
			debug.SetMemoryLimit(max(total/memoryLimitShare, minimumMemoryLimit))
		}
	}
	pct := debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	log.Debug("memory settings", "gc_percent", pct, "gogc_env", gogc,
		"memory_limit_bytes", debug.SetMemoryLimit(-1), "gomemlimit_env", limit)
}

// machineMemory is the memory osgate may have: MemTotal of meminfo, or
// the limit of its cgroup (a container's) if lower; 0 if unknown.
func machineMemory(meminfo, cgroupMax string) int64 {
	total := memTotal(meminfo)
	if b, err := os.ReadFile(cgroupMax); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n // "max" (no limit) does not parse
		}
	}
	return total
}

// memTotal is MemTotal of a /proc/meminfo file in bytes, 0 if unknown.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
