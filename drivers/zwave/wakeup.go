package zwave

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Battery nodes sleep and listen only after they send a Wake Up
// Notification. Whatever is for them (a poll's Get, a write, a new
// wake-up interval, a configuration parameter) waits in a queue until
// then; the queue is sent, then Wake Up No More Information lets the node
// sleep again.

const (
	wakeUpIntervalSet    = 0x04
	wakeUpIntervalGet    = 0x05
	wakeUpIntervalReport = 0x06
	wakeUpNotification   = 0x07
	wakeUpNoMoreInfo     = 0x08

	maxPending   = 32               // commands waiting for one sleeping node
	wakeUpBudget = 60 * time.Second // how long one wake-up may keep a node awake
)

// pending is a command waiting for a node's wake-up.
type pending struct {
	what   string // for zwave.nodes: "get air_temperature", "set switch"
	key    string // a second command with the same key replaces the first
	run    func(ctx context.Context, ctl *controller) error
	done   chan error // buffered; nil when nobody waits
	queued time.Time
}

// sleeper is a sleeping node's queue.
type sleeper struct {
	awake    bool // between its Wake Up Notification and our No More Information
	draining bool
	lastWake time.Time
	queue    []*pending
}

type wakeUps struct {
	mu    sync.Mutex
	nodes map[byte]*sleeper
}

func newWakeUps() *wakeUps { return &wakeUps{nodes: map[byte]*sleeper{}} }

func (w *wakeUps) node(id byte) *sleeper {
	s := w.nodes[id]
	if s == nil {
		s = &sleeper{}
		w.nodes[id] = s
	}
	return s
}

// sleeping reports whether a node is a battery node that is asleep now:
// not listening, not a FLiRS node (which wakes on a beam), and not within
// a wake-up.
func (c *Connector) sleeping(ctl *controller, node byte) bool {
	_, _, _, info := ctl.snapshot()
	ni, ok := info[node]
	if !ok || ni.Listening || ni.FLiRS {
		return false
	}
	c.wake.mu.Lock()
	defer c.wake.mu.Unlock()
	return !c.wake.node(node).awake
}

// isSleeper reports whether a node sleeps between wake-ups (whether or
// not it is awake now).
func isSleeper(ctl *controller, node byte) bool {
	_, _, _, info := ctl.snapshot()
	ni, ok := info[node]
	return ok && !ni.Listening && !ni.FLiRS
}

var errQueueFull = errors.New("the node's queue is full")

// enqueue adds a command to a sleeping node's queue; a command with the
// same key replaces the one waiting. A node awake now gets it at once.
func (c *Connector) enqueue(ctl *controller, node byte, p *pending) error {
	p.queued = time.Now()
	c.wake.mu.Lock()
	s := c.wake.node(node)
	replaced := false
	for i, q := range s.queue {
		if p.key != "" && q.key == p.key {
			if q.done != nil {
				q.done <- errors.New("replaced by a newer command of the same kind")
			}
			s.queue[i], replaced = p, true
			break
		}
	}
	if !replaced {
		if len(s.queue) >= maxPending {
			c.wake.mu.Unlock()
			return fmt.Errorf("zwave: node %d sleeps and %d commands already wait for it: %w", node, maxPending, errQueueFull)
		}
		s.queue = append(s.queue, p)
	}
	start := s.awake && !s.draining
	if start {
		s.draining = true
	}
	c.wake.mu.Unlock()
	if start {
		go c.drain(ctl, node)
	}
	return nil
}

// queueGet queues a channel's Get for a sleeping node; the report goes
// out through Listen.
func (c *Connector) queueGet(ctl *controller, node byte, channel string, def channelDef) {
	err := c.enqueue(ctl, node, &pending{what: "get " + channel, key: fmt.Sprintf("get %d % X", def.ep, def.get),
		run: func(ctx context.Context, ctl *controller) error {
			vs, err := c.get(ctx, ctl, node, channel, def)
			if err == nil {
				c.exportValues(node, vs, time.Now())
			}
			return err
		}})
	if err != nil {
		c.log.Warn("zwave: poll of a sleeping node not queued", "node", node, "channel", channel, "err", err)
	}
}

// errQueued says a command waits for a sleeping node.
var errQueued = errors.New("the node is asleep: the command is queued and goes out when it wakes up (zwave.nodes lists it)")

// queueAndWait queues a command for a sleeping node and waits for its
// outcome within ctx; when ctx ends first the command stays queued and
// the error wraps errQueued.
func (c *Connector) queueAndWait(ctx context.Context, ctl *controller, node byte, what string, run func(ctx context.Context, ctl *controller) error) error {
	p := &pending{what: what, key: what, run: run, done: make(chan error, 1)}
	if err := c.enqueue(ctl, node, p); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("node %d: %w", node, errQueued)
	}
}

// wakeUp handles a node's Wake Up Notification (on the reader goroutine).
func (c *Connector) wakeUp(ctl *controller, node byte) {
	if !isSleeper(ctl, node) {
		c.log.Debug("zwave: wake up notification from a node that does not sleep, ignored", "node", node)
		return
	}
	c.wake.mu.Lock()
	s := c.wake.node(node)
	s.awake, s.lastWake = true, time.Now()
	start := !s.draining
	s.draining = true
	n := len(s.queue)
	c.wake.mu.Unlock()
	c.log.Info("zwave: node woke up", "node", node, "pending", n)
	if start {
		go c.drain(ctl, node)
	}
}

// drain sends a woken node its queue, learns its wake-up interval if it
// is not known, and lets it sleep again.
func (c *Connector) drain(ctl *controller, node byte) {
	ctx, cancel := context.WithTimeout(context.Background(), wakeUpBudget)
	defer cancel()
	if _, _, _, info := ctl.snapshot(); info[node].CCs == nil {
		// Awake now: learn what it supports (its node information).
		if _, err := ctl.requestNodeInfo(ctx, node); err != nil {
			c.log.Debug("zwave: node information of a woken node not read", "node", node, "err", err)
		}
	}
	for {
		c.wake.mu.Lock()
		s := c.wake.node(node)
		if len(s.queue) == 0 || ctx.Err() != nil {
			c.wake.mu.Unlock()
			break
		}
		p := s.queue[0]
		s.queue = s.queue[1:]
		c.wake.mu.Unlock()
		err := p.run(ctx, ctl)
		if errors.Is(err, errNoAck) {
			// It went back to sleep: the command waits for the next
			// wake-up, at the head of the queue.
			c.wake.mu.Lock()
			s.queue = append([]*pending{p}, s.queue...)
			c.wake.mu.Unlock()
			c.log.Info("zwave: node went back to sleep before its queue was sent", "node", node, "pending", p.what)
			break
		}
		if p.done != nil {
			p.done <- err
		} else if err != nil {
			c.log.Warn("zwave: queued command for a sleeping node failed", "node", node, "command", p.what, "err", err)
		}
	}
	if isSleeper(ctl, node) && c.store.record(node).WakeUpSeconds == 0 && c.supports(node, ccWakeUp) {
		if err := c.askWakeUpInterval(ctx, ctl, node); err != nil {
			c.log.Debug("zwave: wake-up interval not learned", "node", node, "err", err)
		}
	}
	if err := c.send(ctx, ctl, node, []byte{ccWakeUp, wakeUpNoMoreInfo}, sendOpts{}); err != nil {
		c.log.Debug("zwave: wake up no more information not sent", "node", node, "err", err)
	}
	c.wake.mu.Lock()
	s := c.wake.node(node)
	s.awake, s.draining = false, false
	c.wake.mu.Unlock()
}

// askWakeUpInterval asks a node for its wake-up interval and stores it.
func (c *Connector) askWakeUpInterval(ctx context.Context, ctl *controller, node byte) error {
	m, err := c.request(ctx, ctl, node, []byte{ccWakeUp, wakeUpIntervalGet}, sendOpts{}, func(m rxMsg) bool {
		return m.is(ccWakeUp, wakeUpIntervalReport)
	}, c.set.ReportTimeout, fmt.Sprintf("wake-up interval of node %d", node))
	if err != nil {
		return err
	}
	c.learnWakeUpInterval(m)
	return nil
}

// learnWakeUpInterval stores the interval of a Wake Up Interval Report.
func (c *Connector) learnWakeUpInterval(m rxMsg) {
	if len(m.cmd) < 5 {
		c.drop("malformed", m.node, fmt.Errorf("wake up interval report % X: %w", m.cmd, errShort))
		return
	}
	secs := int(m.cmd[2])<<16 | int(m.cmd[3])<<8 | int(m.cmd[4])
	if c.store.record(m.node).WakeUpSeconds == secs {
		return // unchanged: no write to the SD card
	}
	if err := c.store.update(m.node, func(r *nodeRecord) { r.WakeUpSeconds = secs }); err != nil {
		c.log.Warn("zwave: wake-up interval not saved", "node", m.node, "err", err)
	}
	c.log.Info("zwave: wake-up interval learned", "node", m.node, "interval", time.Duration(secs)*time.Second)
}

// pendingOf lists what waits for a node, for zwave.nodes.
func (c *Connector) pendingOf(node byte) (awake bool, last time.Time, what []string) {
	c.wake.mu.Lock()
	defer c.wake.mu.Unlock()
	s := c.wake.nodes[node]
	if s == nil {
		return false, time.Time{}, nil
	}
	for _, p := range s.queue {
		what = append(what, p.what)
	}
	return s.awake, s.lastWake, what
}

// supports reports whether a node lists a command class, securely or not.
func (c *Connector) supports(node, cc byte) bool {
	return c.store.record(node).secureCC(cc) || c.supportsPlain(node, cc)
}
