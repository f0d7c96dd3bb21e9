//go:build !linux

package main

import "errors"

// setTimerSlack does nothing outside Linux.
func setTimerSlack() timerSlack {
	return timerSlack{err: errors.New("timer slack: Linux only")}
}
