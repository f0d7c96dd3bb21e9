package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// restartedEnv marks the process osgate started again with the slack set
// (see timerslack.go), so that it never starts itself twice; it is taken
// out of the environment again at once.
const restartedEnv = "OSGATE_TIMER_SLACK_RESTART"

// setTimerSlack runs first in `osgate run`. It returns once the process
// runs with the timer slack asked for, or cannot; else it sets the slack
// on its thread and starts the program again in its place, and does not
// return.
func setTimerSlack() timerSlack {
	t := timerSlack{env: os.Getenv(timerSlackEnv)}
	if os.Getenv(restartedEnv) != "" {
		t.fresh = true
		os.Unsetenv(restartedEnv) // not for the processes osgate starts
	}
	runtime.LockOSThread() // prctl and exec on one thread
	defer runtime.UnlockOSThread()
	if t.have, t.err = threadSlack(); t.err != nil {
		return t
	}
	want, err := parseTimerSlack(t.env)
	if t.err = err; err != nil || want == 0 || t.have == want {
		return t
	}
	if t.fresh {
		t.err = fmt.Errorf("started again with a timer slack of %v, it runs with %v", want, t.have)
		return t
	}
	exe, err := os.Executable()
	if err != nil {
		t.err = fmt.Errorf("find the program to start it again with the slack: %w", err)
		return t
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(want.Nanoseconds()), 0, 0, 0); err != nil {
		t.err = fmt.Errorf("set the timer slack: %w", err)
		return t
	}
	err = syscall.Exec(exe, os.Args, append(os.Environ(), restartedEnv+"=1"))
	// Still here: this thread has the slack, the others have not.
	unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(t.have.Nanoseconds()), 0, 0, 0)
	t.err = fmt.Errorf("start %s again with the slack: %w", exe, err)
	return t
}

// threadSlack is the timer slack of the calling thread.
func threadSlack() (time.Duration, error) {
	ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("read the timer slack: %w", err)
	}
	return time.Duration(ns), nil
}
