// Package lograte bounds how many lines a flood of events writes to the
// log, which on the appliance is an SD card. Limit bounds one kind of event
// (refused requests, rejected messages): at most Burst lines per Window;
// the rest are counted, and the count rides on the next line written.
// Keyed lets each key of an event (a channel, a topic) through once per
// period, remembering a bounded number of keys.
package lograte

import (
	"sync"
	"time"

	"github.com/osgate/osgate/internal/lru"
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

// Keyed lets an event through once per period per key, so a noisy channel
// or topic is logged without flooding the log. It remembers at most a
// fixed number of keys (the least recently seen forgotten first): keys
// come from input, and one forgotten is at worst logged again. Use
// NewKeyed.
type Keyed[K comparable] struct {
	period time.Duration
	last   *lru.Cache[K, time.Time]
}

// NewKeyed returns a Keyed remembering up to keys keys, reporting its size
// to m. A period of 0 lets each key through once, until it is forgotten.
func NewKeyed[K comparable](keys int, period time.Duration, m lru.Metrics) *Keyed[K] {
	return &Keyed[K]{period: period, last: lru.New[K, time.Time](keys, m)}
}

// Allow reports whether the event of key may be logged at now.
func (k *Keyed[K]) Allow(key K, now time.Time) bool {
	if t, ok := k.last.Get(key); ok && (k.period == 0 || now.Sub(t) < k.period) {
		return false
	}
	k.last.Add(key, now)
	return true
}

// Len is the number of keys remembered.
func (k *Keyed[K]) Len() int { return k.last.Len() }
