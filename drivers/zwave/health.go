package zwave

import (
	"fmt"
	"time"
)

// nodeHealth is what the connector knows about a node's liveness: a node
// that stops acknowledging is dead and is tried again after a back-off that
// doubles, so it never holds up the bus for the others.
type nodeHealth struct {
	failures int
	deadAt   time.Time
	retryAt  time.Time
	lastErr  error
	seen     map[string]time.Time // channel → when its value last arrived

	secFailures int // secure frames from the node that could not be used
}

func (c *Connector) nodeHealth(node byte) *nodeHealth {
	h := c.health[node]
	if h == nil {
		h = &nodeHealth{seen: map[string]time.Time{}}
		c.health[node] = h
	}
	return h
}

// alive records that a node answered.
func (c *Connector) alive(node byte) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	h := c.nodeHealth(node)
	if h.failures > 0 {
		c.log.Info("zwave: node is back", "node", node, "device", deviceName(c.byNode, node), "was_dead_for", time.Since(h.deadAt).Round(time.Second))
	}
	h.failures = 0
	h.retryAt = time.Time{}
	h.lastErr = nil
}

// failed records that a node did not acknowledge and schedules its retry.
// A battery node that sleeps is not dead for missing a frame: it answers
// at its wake-up.
func (c *Connector) failed(node byte, err error) {
	if ctl, _ := c.current(); ctl != nil && isSleeper(ctl, node) {
		c.log.Debug("zwave: sleeping node did not acknowledge; it is not marked dead", "node", node, "err", err)
		return
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	h := c.nodeHealth(node)
	if h.failures == 0 {
		h.deadAt = time.Now()
	}
	h.failures++
	h.lastErr = err
	wait := c.set.DeadBackoff << min(h.failures-1, 5)
	h.retryAt = time.Now().Add(wait)
	c.log.Warn("zwave: node marked dead", "node", node, "device", deviceName(c.byNode, node), "failures", h.failures, "retry_in", wait, "err", err)
}

// deadErr returns an error while a dead node's back-off runs.
func (c *Connector) deadErr(node byte) error {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	h := c.nodeHealth(node)
	if h.failures == 0 || time.Now().After(h.retryAt) {
		return nil
	}
	return fmt.Errorf("zwave: node %d is dead since %s (%v); next try in %s", node,
		h.deadAt.Format(time.RFC3339), h.lastErr, time.Until(h.retryAt).Round(time.Second))
}

// isDead reports whether the node failed its last contact.
func (c *Connector) isDead(node byte) bool {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	return c.nodeHealth(node).failures > 0
}

func (c *Connector) seen(node byte, channel string, at time.Time) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.nodeHealth(node).seen[channel] = at
}

func (c *Connector) forget(node byte, channel string) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	delete(c.nodeHealth(node).seen, channel)
}

// fresh reports whether a channel's value arrived within the last d.
func (c *Connector) fresh(node byte, channel string, d time.Duration) bool {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	at, ok := c.nodeHealth(node).seen[channel]
	return ok && d > 0 && time.Since(at) < d
}
