package source

import (
	"math/rand/v2"
	"time"
)

// nextDelay is how long to wait before the next pull. After a success it is
// the interval less up to a tenth (jitter spreads a fleet's pulls, and a
// change is still picked up within one interval). After failures it grows
// from a sixteenth of the interval (1s to 30s) by doubling, never beyond
// the interval, with equal jitter.
func nextDelay(interval time.Duration, failures int) time.Duration {
	if failures == 0 {
		return interval - jitter(interval/10)
	}
	d := min(max(interval/16, time.Second), 30*time.Second)
	for i := 1; i < failures && d < interval; i++ {
		d *= 2
	}
	d = min(d, interval)
	return d/2 + jitter(d/2)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
