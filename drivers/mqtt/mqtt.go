// Package mqtt is osgate's MQTT connector: a Listener that subscribes to
// one or more field brokers and turns their messages into readings through
// the mappings of drivers/mapping (topic filters with named captures, JSON
// paths, timestamps, plain payloads).
//
// Durability: every subscription is made with a fixed client id and, by
// default, a persistent session, and a QoS 1/2 message is acknowledged to
// its broker only after emit has accepted all of its readings. A message
// that is in the connector when the pipeline stalls, osgate stops, or the
// broker goes away is therefore redelivered by the broker, never lost
// (readings can then repeat, as QoS 1 allows).
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
)

func init() { core.Register("mqtt", New) }

// Connector is a configured mqtt connector.
type Connector struct {
	name    string
	log     *slog.Logger
	brokers []broker
	set     *mapping.Set
	rejects *mapping.Rejects
	subs    []string // the filters to subscribe to, deduplicated
	// maxPayload bounds a message's payload (settings.max_payload).
	maxPayload int

	mu        sync.Mutex
	listening bool
}

// New checks the configuration and prepares the connector; it does no I/O.
// Certificate files are read when Listen connects.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	s, brokers, maps, es := parseSettings(cfg.Settings, cfg.Name)
	cat, err := mapping.NewCatalog(cfg.Devices, s.OnlyConfigured)
	es.Merge("", err)
	if err := es.Err(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("connector", cfg.Name)
	c := &Connector{
		name:    cfg.Name,
		log:     log,
		brokers: brokers,
		set:     mapping.NewSet(maps, cat),
		rejects: mapping.NewRejects(cfg.Name, log, cfg.Stats),

		maxPayload: s.MaxPayload,
	}
	seen := map[string]bool{}
	for _, m := range maps {
		sub := m.Filter().Subscription()
		if !seen[sub] {
			seen[sub] = true
			c.subs = append(c.subs, sub)
		}
	}
	return c, nil
}

// Listen connects to every broker, subscribes, and emits readings until
// ctx ends. Each broker reconnects by itself with back-off. Listen returns
// early when a broker's TLS files cannot be loaded, or when emit refuses a
// reading (its message stays unacknowledged, so the broker sends it again
// to the next Listen).
func (c *Connector) Listen(ctx context.Context, emit func(...core.Reading) error) error {
	c.mu.Lock()
	if c.listening {
		c.mu.Unlock()
		return errors.New("mqtt: Listen is already running")
	}
	c.listening = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.listening = false
		c.mu.Unlock()
	}()

	sessions := make([]*session, 0, len(c.brokers))
	for i := range c.brokers {
		s, err := c.newSession(&c.brokers[i], emit)
		if err != nil {
			return fmt.Errorf("mqtt: broker %s: %w", c.brokers[i].String(), err)
		}
		sessions = append(sessions, s)
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range sessions {
		s.fail = func(err error) { cancel(err) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	// A session failed: emit refused a reading. Its message was not
	// acknowledged; the broker sends it again when the core restarts
	// Listen.
	return fmt.Errorf("mqtt: %w", context.Cause(ctx))
}

// Close releases nothing: every client lives inside Listen.
func (c *Connector) Close() error { return nil }
