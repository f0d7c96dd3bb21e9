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
