package appliance

import (
	"sync"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// clockFloor is a time the wall clock cannot be before once it has been set:
// a Raspberry Pi has no real-time clock and boots in 1970 until NTP answers.
var clockFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// maxHeld bounds the batches held while the clock is unset, and
// maxHeldReadings the readings in them (a batch may be one message of
// thousands of channels); beyond either, new batches are dropped and
// counted (reason "clock").
const (
	maxHeld         = 10000
	maxHeldReadings = 200000
)

// clockGate holds readings taken before the clock was set and re-stamps them
// once it is: a held reading's age is known from the monotonic clock, so its
// wall time is "now minus age", with quality Uncertain since that time is
// reconstructed. Nothing is exported with a 1970 timestamp.
type clockGate struct {
	now      func() time.Time // wall clock (tests replace it)
	mu       sync.Mutex
	held     []heldBatch
	readings int // in held
}

type heldBatch struct {
	conn     *connRun
	device   string
	readings []core.Reading
	at       time.Time // time.Now() when held: carries the monotonic reading
}

// set reports whether the wall clock has been set.
func (c *clockGate) set() bool { return !c.now().Before(clockFloor) }

// hold keeps a copy of a batch until the clock is set; it reports false
// (and keeps nothing) when the hold is full.
func (c *clockGate) hold(conn *connRun, device string, rs []core.Reading) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) >= maxHeld || c.readings+len(rs) > maxHeldReadings {
		return false
	}
	c.readings += len(rs)
	c.held = append(c.held, heldBatch{conn: conn, device: device, readings: append([]core.Reading(nil), rs...), at: time.Now()})
	return true
}

// release returns the held batches re-stamped, once the clock is set.
func (c *clockGate) release() []heldBatch {
	if !c.set() {
		return nil
	}
	c.mu.Lock()
	held := c.held
	c.held, c.readings = nil, 0
	c.mu.Unlock()
	now := c.now()
	for _, b := range held {
		t := now.Add(-time.Since(b.at))
		for i := range b.readings {
			r := &b.readings[i]
			if r.Time.Before(clockFloor) {
				r.Time = t
				if r.Quality == core.Good {
					r.Quality = core.Uncertain
				}
			}
		}
	}
	return held
}

// pending is how many batches wait for the clock.
func (c *clockGate) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}
