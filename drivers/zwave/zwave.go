// Package zwave is osgate's Z-Wave connector: a Serial API host that talks
// to a USB stick (Aeotec Z-Stick, Zooz ZST10, Silicon Labs UZB) directly,
// reads reports of the nodes it knows, polls the ones that stay silent
// (battery nodes at their wake-up), switches relays, dimmers and locks,
// includes nodes with S2 or S0 security and commissions them. See
// README.md.
package zwave

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/osgate/osgate/board"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/lograte"
)

func init() { core.Register("zwave", New) }

// reportQueue bounds the reports (each a batch of readings) that wait for
// Listen. The stick must be answered at once, so a report that finds the
// queue full is dropped and counted: with Listen running, the queue only
// fills while the export holds the whole pipeline back.
const reportQueue = 1024

// Connector is one Z-Wave stick and the nodes configured on it.
type Connector struct {
	name   string
	set    settings
	byName map[string]*device
	byNode map[byte]*device
	log    *slog.Logger
	stats  core.Stats

	// openPath turns the configured port into a device path; tests and
	// "auto" go through it.
	openPath func() (string, error)

	opening chan struct{} // one opening of the stick at a time
	mu      sync.Mutex
	ctl     *controller // nil until the first use opens the stick
	closed  bool

	readings chan []core.Reading // unsolicited reports for Listen

	hmu    sync.Mutex
	health map[byte]*nodeHealth

	store *store    // keys and node records on disk
	sec   *security // network keys and nonces
	ts    *transportService

	wmu     sync.Mutex
	waiters []*msgWaiter // requests waiting for a node's command

	nmu       sync.Mutex
	nodeLocks map[byte]chan struct{} // one exchange per node at a time
	sessions  map[byte]byte          // last Supervision session id per node

	wake *wakeUps // sleeping nodes and what waits for them

	ss *smartStart // the provisioning list and SmartStart listening

	dropLog *lograte.Limit
}

// New checks the configuration; it does no I/O.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	set, byName, byNode, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Connector{
		name:     cfg.Name,
		set:      set,
		byName:   byName,
		byNode:   byNode,
		log:      log.With("connector", cfg.Name),
		stats:    core.StatsOf(cfg),
		readings: make(chan []core.Reading, reportQueue),
		opening:  make(chan struct{}, 1),
		health:   map[byte]*nodeHealth{},

		sec:       newSecurity(),
		ts:        newTransportService(),
		nodeLocks: map[byte]chan struct{}{},
		sessions:  map[byte]byte{},
		wake:      newWakeUps(),
		ss:        newSmartStart(),
		dropLog:   dropLogLimit(),
	}
	c.stats.Register(framesDropped)
	c.store = newStore(cfg.StateDir, cfg.Name, c.log)
	c.openPath = func() (string, error) {
		if set.Port == "auto" {
			return board.FindZWaveStick()
		}
		return board.ResolvePort(set.Port)
	}
	return c, nil
}

// session returns the open controller session, opening the stick and
// running the start-up sequence first if needed. Waiting for another
// caller's opening counts against ctx.
func (c *Connector) session(ctx context.Context) (*controller, error) {
	if ctl, err := c.current(); ctl != nil || err != nil {
		return ctl, err
	}
	select {
	case c.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("zwave: waiting for the stick to open: %w", ctx.Err())
	}
	defer func() { <-c.opening }()
	if ctl, err := c.current(); ctl != nil || err != nil {
		return ctl, err // another caller opened it meanwhile
	}
	path, err := c.openPath()
	if err != nil {
		return nil, fmt.Errorf("zwave: find the stick: %w", err)
	}
	port, err := openPort(path)
	if err != nil {
		return nil, err
	}
	ctl := newController(c.log.With("port", path))
	ctl.onUnsolicited = func(f frame) { c.unsolicited(ctl, f) }
	ctl.onNodeFailed = c.failed
	ctl.link = newLink(port, ctl.log, ctl.dispatch)
	go c.respond(ctl)
	if err := ctl.start(ctx, c.set.SoftReset); err != nil {
		ctl.close()
		return nil, fmt.Errorf("zwave: start session on %s: %w", path, err)
	}
	if err := c.startSecurity(ctl); err != nil {
		ctl.close()
		return nil, err
	}
	ctl.setReady(func(f frame) { c.appCommand(ctl, f) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		ctl.close()
		return nil, errClosed
	}
	c.ctl = ctl
	go c.startSmartStart(ctl)
	return ctl, nil
}

var errClosed = errors.New("zwave: connector closed")

// startSecurity loads the node records of the stick's network and the
// network keys (when there are some), and forgets every nonce of an
// earlier session.
func (c *Connector) startSecurity(ctl *controller) error {
	own, home, _, _ := ctl.snapshot()
	if err := c.store.useNetwork(home); err != nil {
		return err
	}
	c.sec.session(own, home)
	keys, err := c.store.loadKeys(false)
	if err != nil {
		return err
	}
	if keys != nil {
		c.sec.setKeys(keys)
	}
	return nil
}

// keys returns the network keys, making them on first use.
func (c *Connector) keys() error {
	if c.sec.hasKeys() {
		return nil
	}
	k, err := c.store.loadKeys(true)
	if err != nil {
		return err
	}
	c.sec.setKeys(k)
	return nil
}

// current returns the open session, nil if there is none (or the link to
// the stick went down), or errClosed.
func (c *Connector) current() (*controller, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if c.ctl == nil {
		return nil, nil
	}
	select {
	case <-c.ctl.link.done:
		c.log.Warn("zwave: link to the stick went down, reopening", "err", c.ctl.link.err)
		c.ctl.close()
		c.ctl = nil
		return nil, nil
	default:
		return c.ctl, nil
	}
}

// Close closes the stick; it is safe to call more than once.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.ctl == nil {
		return nil
	}
	err := c.ctl.close()
	c.ctl = nil
	return err
}
