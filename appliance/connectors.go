package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/lru"
	"github.com/osgate/osgate/internal/prom"
)

// connRun is one running connector: the driver instance, its devices and
// the goroutines that poll or listen, all stopped by cancel.
type connRun struct {
	g       *Gateway
	name    string
	typ     string
	cfg     config.Connector
	log     *slog.Logger
	conn    core.Connector
	devices []*devRun
	byName  map[string]*devRun
	// chains[device][channel] transforms readings on the way out; reads
	// are the same without deadband state, for device.read.
	chains map[string]map[string]*transform.Chain
	reads  map[string]map[string]*transform.Chain
	topics *lru.Cache[string, string] // device name -> topic, for discovered devices too
	// topicTmpl and gatewayID make topics (copied: the config may change).
	topicTmpl, gatewayID string
	m                    connMetrics

	started time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// maxTopics bounds the export topics a connector keeps computed: its
// configured devices and the most recently seen discovered ones.
const maxTopics = 4096

// connMetrics are a connector's metric children, looked up once.
type connMetrics struct {
	in, out, chanErrs, suppressed, polls, pollErrors, listenerRestarts *prom.Counter
	pollsLate, pollsMissed                                             *prom.Counter
	dropRange, dropTransform, dropTooLarge, dropDisk                   *prom.Counter
}

func newConnMetrics(name string) connMetrics {
	return connMetrics{
		in:               metrics.ReadingsIn.WithLabelValues(name),
		out:              metrics.ReadingsOut.WithLabelValues(name),
		chanErrs:         metrics.ChannelErrors.WithLabelValues(name),
		suppressed:       metrics.ReadingsSuppressed.WithLabelValues(name),
		polls:            metrics.Polls.WithLabelValues(name),
		pollErrors:       metrics.PollErrors.WithLabelValues(name),
		pollsLate:        metrics.PollsLate.WithLabelValues(name),
		pollsMissed:      metrics.PollsMissed.WithLabelValues(name),
		listenerRestarts: metrics.ListenerRestarts.WithLabelValues(name),
		dropRange:        metrics.ReadingsDropped.WithLabelValues(name, "range"),
		dropTransform:    metrics.ReadingsDropped.WithLabelValues(name, "transform"),
		dropTooLarge:     metrics.ReadingsDropped.WithLabelValues(name, "too_large"),
		dropDisk:         metrics.ReadingsDropped.WithLabelValues(name, "disk_full"),
	}
}

// connStats is a connector's core.Stats: what its driver counts, on the
// gateway's metrics under the connector's name.
type connStats struct{ name string }

func (s connStats) Dropped(reason string, n int) {
	metrics.ReadingsDropped.WithLabelValues(s.name, reason).Add(float64(n))
}

func (s connStats) Cache(name string) lru.Metrics { return metrics.Bounded(name, s.name) }
func (s connStats) Register(c prom.Collector)     { metrics.Register(c) }

// newConnRun builds connector i of cfg: the driver instance (no I/O yet)
// and the transform chains of its channels.
func (g *Gateway) newConnRun(cfg *config.Config, i int) (*connRun, error) {
	cc := cfg.Connectors[i]
	log := g.log.With("connector", cc.Name, "type", cc.Type)
	ccfg := cfg.ConnectorConfig(i, log)
	ccfg.Stats = connStats{name: cc.Name}
	f, ok := core.Lookup(cc.Type)
	if !ok {
		return nil, fmt.Errorf("connector %s: unknown type %q", cc.Name, cc.Type)
	}
	conn, err := f(ccfg)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", cc.Name, err)
	}
	c := &connRun{
		g: g, name: cc.Name, typ: cc.Type, cfg: cc, log: log, conn: conn,
		byName:    map[string]*devRun{},
		chains:    map[string]map[string]*transform.Chain{},
		reads:     map[string]map[string]*transform.Chain{},
		m:         newConnMetrics(cc.Name),
		topics:    lru.New[string, string](maxTopics, metrics.Bounded("export_topics", cc.Name)),
		topicTmpl: cfg.Export.Topic, gatewayID: cfg.Gateway.ID,
	}
	now := time.Now()
	for j, dev := range ccfg.Devices {
		d := &devRun{conn: c, dev: dev, st: devState{state: health.DeviceUnknown, since: now},
			vals: newDeviceValues(cc.Devices[j], dev.Channels)}
		c.devices = append(c.devices, d)
		c.byName[dev.Name] = d
		for k, ch := range cc.Devices[j].Channels {
			spec := ch.TransformSpec()
			chain, err := transform.New(spec)
			if err != nil {
				conn.Close()
				return nil, fmt.Errorf("connector %s: device %s: channel %s: %w", cc.Name, dev.Name, ch.Name, err)
			}
			spec.Deadband = false
			read, _ := transform.New(spec)
			if c.chains[dev.Name] == nil {
				c.chains[dev.Name] = map[string]*transform.Chain{}
				c.reads[dev.Name] = map[string]*transform.Chain{}
			}
			c.chains[dev.Name][dev.Channels[k].Name] = chain
			d.chains = append(d.chains, chain)
			c.reads[dev.Name][dev.Channels[k].Name] = read
		}
	}
	return c, nil
}

// inherit takes the device states of the run this one replaces, so a
// restarted connector's devices keep their state until their next poll.
func (c *connRun) inherit(old *connRun) {
	if old == nil {
		return
	}
	for _, d := range c.devices {
		if od := old.byName[d.dev.Name]; od != nil {
			od.mu.Lock()
			d.st = od.st
			od.mu.Unlock()
			d.vals.inherit(od.vals)
		}
	}
}

// interval is the shortest device interval: how often the health model
// expects to hear of the connector. A connector that only listens is not
// expected at any rate (0): field devices report when they like, and a
// listener is judged by whether it fails.
func (c *connRun) interval() time.Duration {
	if _, polls := c.conn.(core.Poller); !polls {
		return 0
	}
	iv := time.Duration(0)
	for _, d := range c.devices {
		if iv == 0 || d.dev.Interval < iv {
			iv = d.dev.Interval
		}
	}
	if iv == 0 {
		iv = 10 * time.Second
	}
	return iv
}

// start launches the connector's goroutines.
func (c *connRun) start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	c.cancel = cancel
	c.started = time.Now()
	c.g.health.AddConnector(c.name, c.interval())
	for _, d := range c.devices {
		c.g.devices.add(d)
	}
	if p, ok := c.conn.(core.Poller); ok {
		for _, d := range c.devices {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				d.pollLoop(ctx, p)
			}()
		}
	}
	if l, ok := c.conn.(core.Listener); ok {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.listenLoop(ctx, l)
		}()
	}
	c.log.Info("connector started", "devices", len(c.devices), "kind", c.kind())
}

// stop ends the goroutines, waits for them and closes the driver.
func (c *connRun) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if err := c.conn.Close(); err != nil {
		c.log.Warn("connector close", "err", err)
	}
	c.g.health.RemoveConnector(c.name)
	c.g.devices.remove(c)
	c.log.Info("connector stopped")
}

// kind says how the connector sources data.
func (c *connRun) kind() string {
	_, p := c.conn.(core.Poller)
	_, l := c.conn.(core.Listener)
	switch {
	case p && l:
		return "poller+listener"
	case l:
		return "listener"
	}
	return "poller"
}
