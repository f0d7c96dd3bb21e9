// Package lograte bounds how many lines a flood of one kind of event (refused
// requests, rejected messages) writes to the log, which on the appliance is
// an SD card: at most Burst lines per Window; the rest are counted, and the
// count rides on the next line written.
package lograte

import (
	"sync"
	"time"
)

// Limit is one such bound. Set Burst and Window before use.
type Limit struct {
	Burst  int
	Window time.Duration

	mu         sync.Mutex
	start      time.Time
	written    int
	suppressed int
}

// Allow reports whether a line may be written now, and how many were
// suppressed since the last one written.
func (l *Limit) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.Window {
		l.start, l.written = now, 0
	}
	if l.written >= l.Burst {
		l.suppressed++
		return false, 0
	}
	l.written++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
