// Package backoff is osgate's one exponential back-off: how long to wait
// before trying again after a run of failures (a device poll, a listener,
// the managed broker, an MQTT connection, a config pull, a release check),
// and how to spread out the retries of peers that failed together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Jitter is how a Policy spreads out its waits.
type Jitter uint8

const (
	// None waits exactly the computed time.
	None Jitter = iota
	// Equal waits half the computed time plus up to the other half at
	// random: a fleet that failed together retries spread over the whole
	// second half.
	Equal
	// Tenth waits the computed time ±10 % at random.
	Tenth
)

// Policy is one back-off: the wait after the first failure is First, and
// it doubles with each further failure in a row, up to Max.
type Policy struct {
	First, Max time.Duration
	Jitter     Jitter
}

// Delay is the wait after failures failures in a row (0 counts as 1).
func (p Policy) Delay(failures int) time.Duration {
	d := p.First
	for i := 1; i < failures && d < p.Max; i++ {
		if d > p.Max/2 {
			d = p.Max // doubling would pass Max (or overflow)
			break
		}
		d *= 2
	}
	d = min(d, p.Max)
	switch p.Jitter {
	case Equal:
		return d/2 + Random(d/2)
	case Tenth:
		return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
	}
	return d
}

// Periodic is the wait before the next run of a periodic check (a config
// pull, a release check). After a success it is the interval less up to a
// tenth at random: a fleet's checks drift apart, and a change is still
// seen within one interval. After failures it is a back-off from first,
// never beyond the interval, with Equal jitter.
func Periodic(interval, first time.Duration, failures int) time.Duration {
	if failures == 0 {
		return interval - Random(interval/10)
	}
	return Policy{First: first, Max: interval, Jitter: Equal}.Delay(failures)
}

// Random returns a random duration from 0 up to but not including d (0
// when d is not positive): the first delay of a loop, so that loops that
// start together (a fleet that boots at once, a gateway's devices) do not
// run together.
func Random(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
