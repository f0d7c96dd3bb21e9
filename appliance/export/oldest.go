package export

import (
	"bytes"
	"time"
)

// oldestScan bounds the waiting messages Oldest looks at for one with a
// time (status documents carry none).
const oldestScan = 64

// Oldest is the time ("ts") of the oldest reading message not yet safe in
// the broker (the first of Queued), and whether there is one: how far
// behind the export is. Status documents in the queue are skipped.
func (s *Sink) Oldest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(s.queue) && i < oldestScan; i++ {
		if t, ok := payloadTime(s.queue[i].payload); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// payloadTime reads the "ts" an Encode'd payload starts with.
func payloadTime(p []byte) (time.Time, bool) {
	const prefix = `{"ts":"`
	if !bytes.HasPrefix(p, []byte(prefix)) || len(p) < len(prefix)+len(tsLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(tsLayout, string(p[len(prefix):len(prefix)+len(tsLayout)]))
	return t, err == nil
}
