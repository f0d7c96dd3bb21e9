package main

import (
	"fmt"
	"strings"
	"time"
)

// The timer slack of `osgate run`'s threads. Linux may wake a thread
// that sleeps with a timeout up to its slack later than asked, so that
// wake-ups close together are taken as one (prctl(2),
// PR_SET_TIMERSLACK). Go's system monitor thread sleeps 20 µs at a time
// whenever a goroutine has just made a system call, and a poll is a
// string of them (a Modbus request and its answer, a spool write, a
// publish): with Linux's default slack of 50 µs it wakes some
// twenty-five times in every poll of 1,000 registers, and those wake-ups
// were about a third of the gateway's CPU. With a slack of one
// millisecond they coalesce (docs/benchmarks.md, "Timer slack").
// Nothing the gateway times is that fine: a poll's interval and timeout,
// a Modbus frame delay or an MQTT keep-alive may end up to a millisecond
// later, never earlier; wake-ups for data that arrives are not delayed.
//
// Threads take their slack from the thread that made them, and the
// runtime's first threads exist before main runs, so osgate sets the
// slack on its own thread and starts itself again in place (exec(2),
// the same pid, arguments and environment); the process it runs as then
// has the slack in every thread, and so has Mosquitto, which it starts.
//
// OSGATE_TIMER_SLACK in the environment overrides the default: a
// duration (e.g. 50us, Linux's default), or "off" to leave the slack
// osgate was started with.
const (
	defaultTimerSlack = time.Millisecond
	timerSlackEnv     = "OSGATE_TIMER_SLACK"
	// maxTimerSlack bounds the setting: a poll interval is 100 ms or
	// more, and it is late from a tenth of it.
	maxTimerSlack = 10 * time.Millisecond
)

// parseTimerSlack reads the setting; 0 means leave the slack as it is.
func parseTimerSlack(s string) (time.Duration, error) {
	v := strings.TrimSpace(s)
	switch v {
	case "":
		return defaultTimerSlack, nil
	case "off":
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s=%q: not a duration (e.g. 1ms, 50us) or off", timerSlackEnv, s)
	case d <= 0 || d > maxTimerSlack:
		return 0, fmt.Errorf("%s=%q: must be above 0 and at most %v, or off", timerSlackEnv, s, maxTimerSlack)
	}
	return d, nil
}

// timerSlack is what setTimerSlack found and did, logged once the log
// is set up.
type timerSlack struct {
	env   string        // OSGATE_TIMER_SLACK as given
	have  time.Duration // the slack this process runs with
	err   error         // why the slack asked for is not what runs
	fresh bool          // this process is the one started again with the slack
}

// startedWith is what the process at start did about its timer slack.
var startedWith timerSlack

func (t timerSlack) logArgs() []any {
	args := []any{"timer_slack", t.have.String(), "timer_slack_env", t.env, "restarted_for_it", t.fresh}
	if t.err != nil {
		args = append(args, "timer_slack_error", t.err.Error())
	}
	return args
}
