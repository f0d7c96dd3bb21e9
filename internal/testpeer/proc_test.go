package testpeer

import (
	"os"
	"slices"
	"testing"
	"time"
)

// TestReadProc: a Mosquitto this test starts is a child of the test
// process, with resident memory; the test process's CPU time grows while
// it works.
func TestReadProc(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{})
	if !slices.Contains(Children()[os.Getpid()], m.Pid()) {
		t.Fatalf("mosquitto (pid %d) is not among the children of the test process: %v", m.Pid(), Children()[os.Getpid()])
	}
	st, err := ReadProc(m.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS < 512<<10 || st.RSS > 1<<30 {
		t.Errorf("mosquitto's RSS %d bytes: not plausible", st.RSS)
	}
	before, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until /proc counts 50 ms more (on a busy machine the spin
	// gets less than the wall time).
	for start := time.Now(); ; {
		for s := time.Now(); time.Since(s) < 20*time.Millisecond; {
		}
		after, err := ReadProc(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after.CPU-before.CPU >= 50*time.Millisecond {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the test process spun 10 s and /proc counts %s of CPU", after.CPU-before.CPU)
		}
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// TestProcCPUPrecise: ProcCPU counts this process's threads' run time in
// nanoseconds, so 2 ms of spinning shows as about 2 ms, not as 0 or 10 ms
// of ticks, and it agrees with /proc's ticks over a longer spin.
func TestProcCPUPrecise(t *testing.T) {
	if _, err := schedCPU(os.Getpid()); err != nil {
		t.Fatalf("no schedstat here (the benchmarks then count 10 ms ticks): %v", err)
	}
	spin := func(d time.Duration) {
		for s := time.Now(); time.Since(s) < d; {
		}
	}
	// A short spin: more than nothing (on a busy machine the spin gets
	// less than the wall time) and not a tick's worth more (a thread of
	// the runtime may run meanwhile, a little).
	var got time.Duration
	for range 5 {
		before := ProcCPU(t, os.Getpid())
		spin(2 * time.Millisecond)
		got = ProcCPU(t, os.Getpid()) - before
		if got >= 100*time.Microsecond && got < 5*time.Millisecond {
			break
		}
	}
	if got < 100*time.Microsecond || got >= 5*time.Millisecond {
		t.Fatalf("2 ms of spinning counted as %s", got)
	}
	// A longer one: within a few ticks of /proc's user+system time.
	s0, t0 := ProcCPU(t, os.Getpid()), procTicks(t)
	spin(300 * time.Millisecond)
	ds, dt := ProcCPU(t, os.Getpid())-s0, procTicks(t)-t0
	if diff := (ds - dt).Abs(); diff > 40*time.Millisecond {
		t.Fatalf("schedstat counts %s, /proc ticks %s", ds, dt)
	}
}

func procTicks(t *testing.T) time.Duration {
	st, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return st.CPU
}
