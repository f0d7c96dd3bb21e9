package testpeer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// What the process benchmarks measure of a program they run: its CPU time
// and resident memory from /proc, and its counters from /metrics.

// BuildMain builds the main package in dir (a path as go build takes it,
// relative to the calling test's package) as the appliance image is built
// (no cgo), into a temporary directory, and returns the binary's path.
func BuildMain(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir) // "." names the calling test's package
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, dir)
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// OsgateBinary is the osgate binary a process benchmark runs: the one
// $OSGATE_BENCH_BINARY names (another commit's, to compare with in the
// same run), else one built from dir (the osgate main package, relative to
// the calling test's package) by BuildMain.
func OsgateBinary(t testing.TB, dir string) string {
	t.Helper()
	if bin := os.Getenv("OSGATE_BENCH_BINARY"); bin != "" {
		return bin
	}
	return BuildMain(t, dir)
}

// StartProcess starts cmd, fails the test if it exits before the test
// ends (with its output in the failure message), and stops it (SIGTERM,
// then SIGKILL after 20 s) when the test ends. It returns the process id.
func StartProcess(t testing.TB, cmd *exec.Cmd) int {
	t.Helper()
	pid, _ := StartProcessOutput(t, cmd)
	return pid
}

// StartProcessOutput is StartProcess that also returns what the process
// writes (stdout and stderr), as it comes.
func StartProcessOutput(t testing.TB, cmd *exec.Cmd) (int, *Buffer) {
	t.Helper()
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-exited:
			t.Errorf("%s exited before the test ended: %v\n%s", filepath.Base(cmd.Path), err, out.String())
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return cmd.Process.Pid, out
}

// ProcCPU is the CPU time process pid has used so far: the sum of its
// threads' run time as the scheduler counts it (/proc/PID/task/*/schedstat,
// in nanoseconds; a thread that ended is not counted, and Go keeps its
// threads), or, where Linux does not keep that, user+system time in
// 10 ms ticks.
func ProcCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	if d, err := schedCPU(pid); err == nil {
		return d
	}
	st, err := ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.CPU
}

func schedCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("schedstat of %d/%s: %q", pid, task.Name(), b)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("schedstat of %d/%s: %w", pid, task.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// ProcMB is a kB field of /proc/pid/status (StatusKB) in MB.
func ProcMB(t testing.TB, pid int, field string) float64 {
	t.Helper()
	kb, err := StatusKB(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return kb / 1024
}

// ResetPeakRSS resets the peak-RSS mark (VmHWM) of process pid to what is
// resident now.
func ResetPeakRSS(t testing.TB, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS of %d: %v", pid, err)
	}
}

// PeakAnon samples the anonymous resident memory (RssAnon) of process pid
// every 20 ms until stop is called, which returns the highest sample in
// MB. The kernel keeps no peak of it.
func PeakAnon(t testing.TB, pid int) (stop func() float64) {
	t.Helper()
	var mu sync.Mutex
	peak := ProcMB(t, pid, "RssAnon")
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			kb, err := StatusKB(pid, "RssAnon")
			if err != nil {
				return // the process ended
			}
			mu.Lock()
			peak = max(peak, kb/1024)
			mu.Unlock()
		}
	}()
	return func() float64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// Scrape reads the samples of a Prometheus text page, each metric summed
// over its labels; nil if the page does not answer.
func Scrape(url string) map[string]float64 {
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the samples of a Prometheus text exposition, each
// metric summed over its labels.
func ParseMetrics(r io.Reader) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[name] += v
		}
	}
	return m
}

// ProcessRounds runs the benchmark's loop as one-second rounds while
// process pid runs, and returns the CPU time the process used meanwhile
// and how long the rounds took. It reports peak-anon-MB, the peak of the
// process's own memory over the rounds (PeakAnon), and peak-RSS-MB, its
// VmHWM at the end.
func ProcessRounds(b *testing.B, pid int) (cpu, wall time.Duration) {
	b.Helper()
	anon := PeakAnon(b, pid)
	cpu0, start := ProcCPU(b, pid), time.Now()
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(time.Second)
	}
	b.StopTimer()
	cpu, wall = ProcCPU(b, pid)-cpu0, time.Since(start)
	b.ReportMetric(ProcMB(b, pid, "VmHWM"), "peak-RSS-MB")
	b.ReportMetric(anon(), "peak-anon-MB")
	return cpu, wall
}
