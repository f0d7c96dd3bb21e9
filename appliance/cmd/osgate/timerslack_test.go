//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

func TestParseTimerSlack(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"", defaultTimerSlack, ""},
		{"off", 0, ""},
		{" 50us ", 50 * time.Microsecond, ""},
		{"2ms", 2 * time.Millisecond, ""},
		{"10ms", 10 * time.Millisecond, ""},
		{"11ms", 0, "at most 10ms"},
		{"0", 0, "above 0"},
		{"-1ms", 0, "above 0"},
		{"fast", 0, "not a duration"},
	} {
		got, err := parseTimerSlack(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("parseTimerSlack(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), timerSlackEnv)):
			t.Errorf("parseTimerSlack(%q) error %v, want one naming %s and saying %q", c.in, err, timerSlackEnv, c.err)
		case got != c.want:
			t.Errorf("parseTimerSlack(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestRunSetsTimerSlack runs the osgate binary on a config with its
// managed Mosquitto, as the appliance does, three times: as it is, with
// the slack turned off and with a wrong setting. As it is, osgate starts
// again in place (the same pid) with a slack of 1 ms and says so; every
// one of its threads and Mosquitto's has it (read from /proc, which takes
// root: CI runs as root). Turned off, it keeps the slack it was started
// with and does not start again; a wrong setting is warned about and the
// gateway runs as with it off.
func TestRunSetsTimerSlack(t *testing.T) {
	bin := testpeer.BuildMain(t, ".")
	inherited, err := threadSlack()
	if err != nil {
		t.Fatal(err)
	}
	if inherited == defaultTimerSlack {
		t.Fatalf("this test runs with the gateway's slack (%v) already: it would show nothing", inherited)
	}
	run := func(t *testing.T, env string) (int, *testpeer.Buffer, string) {
		cmd, rpc := defaultLikeRun(t, bin, "-d")
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		pid, out := testpeer.StartProcessOutput(t, cmd)
		testpeer.WaitFor(t, time.Minute, "osgate answering /metrics", func() bool {
			return testpeer.Scrape("http://" + rpc + "/metrics")["osgate_polls_total"] >= 1
		})
		var line string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, `msg="timer slack`) {
				line = l
			}
		}
		if line == "" {
			t.Fatalf("no timer slack line in the log:\n%s", out)
		}
		return pid, out, line
	}

	t.Run("default", func(t *testing.T) {
		pid, out, line := run(t, "")
		for _, want := range []string{"level=DEBUG", "timer_slack=1ms", "restarted_for_it=true"} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q lacks %q", line, want)
			}
		}
		if n := strings.Count(out.String(), `msg="timer slack`); n != 1 {
			t.Errorf("the gateway logged its timer slack %d times, want once (it starts again before it logs):\n%s", n, out)
		}
		if os.Geteuid() != 0 {
			t.Logf("not root: the threads' slack in /proc is not readable; the log line is the check")
			return
		}
		procs := append([]int{pid}, testpeer.Children()[pid]...)
		if len(procs) < 2 {
			t.Fatalf("no Mosquitto under the gateway (pid %d)", pid)
		}
		for _, p := range procs {
			tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range tasks {
				b, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(string(b)); got != "1000000" {
					t.Errorf("process %d thread %s has a timer slack of %s ns, want 1000000", p, task.Name(), got)
				}
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		_, _, line := run(t, timerSlackEnv+"=off")
		for _, want := range []string{"timer_slack=" + inherited.String(), "restarted_for_it=false", "timer_slack_env=off"} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q lacks %q", line, want)
			}
		}
	})
	t.Run("wrong", func(t *testing.T) {
		_, _, line := run(t, timerSlackEnv+"=1h")
		for _, want := range []string{"level=WARN", "timer_slack=" + inherited.String(), "restarted_for_it=false", "at most 10ms"} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q lacks %q", line, want)
			}
		}
	})
}
