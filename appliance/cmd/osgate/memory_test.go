package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// tuneMemory sets osgate's GC percent and memory limit when the
// environment says nothing, and leaves the runtime's (GOGC, GOMEMLIMIT)
// when it does.
func TestTuneMemory(t *testing.T) {
	pct0, limit0 := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(pct0)
		debug.SetMemoryLimit(limit0)
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(1 << 62)
	tuneMemory(log)
	if got := debug.SetGCPercent(-1); got != defaultGCPercent {
		t.Errorf("GC percent without GOGC = %d, want %d", got, defaultGCPercent)
	}
	total := machineMemory("/proc/meminfo", "/sys/fs/cgroup/memory.max")
	if total <= 0 {
		t.Fatal("no MemTotal in /proc/meminfo")
	}
	want := max(total/memoryLimitShare, minimumMemoryLimit)
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("memory limit without GOMEMLIMIT = %d, want %d (a quarter of %d)", got, want, total)
	}

	// What the runtime took from the environment at start stays.
	t.Setenv("GOGC", "180")
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetGCPercent(180)
	debug.SetMemoryLimit(300 << 20)
	tuneMemory(log)
	if got := debug.SetGCPercent(-1); got != 180 {
		t.Errorf("GC percent with GOGC=180 = %d, want it left at 180", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("memory limit with GOMEMLIMIT=300MiB = %d, want it left at %d", got, 300<<20)
	}
}

func TestMachineMemory(t *testing.T) {
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	os.WriteFile(meminfo, []byte("MemTotal:        1000000 kB\nMemFree:          500000 kB\n"), 0o600)
	cgroup := filepath.Join(dir, "memory.max")
	for _, c := range []struct {
		cgroup string // "" no file
		want   int64
	}{
		{"", 1000000 << 10},
		{"max\n", 1000000 << 10},
		{"134217728\n", 134217728},
		{"4096000000000\n", 1000000 << 10}, // a limit above the machine's memory
	} {
		os.Remove(cgroup)
		if c.cgroup != "" {
			os.WriteFile(cgroup, []byte(c.cgroup), 0o600)
		}
		if got := machineMemory(meminfo, cgroup); got != c.want {
			t.Errorf("cgroup %q: machineMemory = %d, want %d", c.cgroup, got, c.want)
		}
	}
	if got := machineMemory(filepath.Join(dir, "none"), filepath.Join(dir, "none")); got != 0 {
		t.Errorf("no meminfo: %d, want 0", got)
	}
}
