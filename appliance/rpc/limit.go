package rpc

import (
	"sync"
	"time"
)

// logLimit bounds how many lines a flood of refused requests writes to
// the log (an SD card on the appliance): at most burst lines per window;
// the rest are counted, and the count rides on the next line written.
type logLimit struct {
	burst  int
	window time.Duration

	mu         sync.Mutex
	start      time.Time
	written    int
	suppressed int
}

// allow reports whether a line may be written now, and how many were
// suppressed since the last one written.
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start, l.written = now, 0
	}
	if l.written >= l.burst {
		l.suppressed++
		return false, 0
	}
	l.written++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
