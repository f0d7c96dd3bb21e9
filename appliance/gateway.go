// Package appliance is the gateway itself: the GatewayService that runs the
// managed broker, the export sink, the connectors with their poll scheduler
// and listener supervision, the pipeline of transforms, the JSON-RPC
// service and the health model that all of them report into.
package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/broker"
	"github.com/osgate/osgate/appliance/clock"
	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/appliance/ui"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/lograte"
	"github.com/osgate/osgate/internal/topic"
)

// Version is set at build time (-ldflags "-X ...appliance.Version=v1.2.3").
var Version = "dev"

// BuildTime is when this osgate was built, RFC 3339, set at build time
// (-ldflags "-X ...appliance.BuildTime=2026-12-06T10:00:00Z"): the clock
// is never restored to an earlier time.
var BuildTime = ""

// Built is BuildTime parsed (zero when it is not set).
func Built() time.Time {
	t, _ := time.Parse(time.RFC3339, BuildTime)
	return t
}

// exportGrace is how long the export may be disconnected before the
// gateway counts as unhealthy.
const exportGrace = 2 * time.Minute

// publisher is what the pipeline and the status messages need of the
// export sink.
type publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
	PublishRetained(ctx context.Context, topic string, payload []byte) error
}

// Gateway is the GatewayService: it owns every long-running part of osgate
// and stops them in order (connectors, then export, then broker).
type Gateway struct {
	cfg    *config.Config
	log    *slog.Logger
	health *health.Model
	// clock is the process's time keeper (the supervisor's), or one that
	// trusts the operating system's clock.
	clock *clock.Clock
	// hold keeps readings on disk while the clock waits for a time
	// source (open while Run runs).
	hold   *hold
	sink   publisher
	export *export.Sink
	broker *broker.Broker
	// dropLog rate-limits the log lines of dropped readings: once a minute
	// per channel and reason.
	dropLog *lograte.Keyed[string]
	// watchdog acts on the health model (exit when stuck, systemd pings).
	watchdog *watchdog
	// maxPayload bounds an export message: the managed broker drops larger
	// ones (message_size_limit), so the pipeline drops and counts them
	// first. 0: no bound (a broker someone else runs).
	maxPayload int64
	// disk watches the state dir's free space and writes refused for it.
	disk *disk
	// devices keeps the device states in step everywhere and publishes
	// the status messages.
	devices *deviceBook
	// handover is set when the gateway stops only to be replaced by one
	// on a new configuration: it then does not announce "offline".
	handover atomic.Bool
	// logs are the recent log lines (gateway.logs); host reads the
	// machine for gateway.status; sessions are the technician's pages'
	// sign-ins (the supervisor's outlive the gateway).
	logs     *logRing
	host     *host
	sessions *ui.Sessions

	mu      sync.Mutex
	conns   map[string]*connRun
	order   []string
	connCtx context.Context
	started time.Time
	rpcAddr string
	// rpcServer and cmdMethods: the RPC methods of driver commands.
	rpcServer  *rpc.Server
	cmdMethods map[string]bool
	// configStatus reports where the configuration came from.
	configStatus func() source.Status
	// configTrial says whether the running configuration is on trial (the
	// supervisor judges it).
	configTrial func() bool
	// extraMethods are RPC methods of parts outside the gateway (OTA).
	extraMethods map[string]rpc.Method
	// otaStatus is the update agent's state for the status document (nil
	// without an agent).
	otaStatus func() *export.OTAStatus
}

// New prepares a gateway for a validated config; nothing runs until Run.
func New(cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.Default()
	}
	logs := newLogRing()
	return newGateway(cfg, teeLogs(log, logs), logs, ui.NewSessions())
}

// newGateway is New with a log that already keeps its lines in logs, and
// the sign-ins of the technician's pages (the supervisor's, which outlive
// one gateway).
func newGateway(cfg *config.Config, log *slog.Logger, logs *logRing, sessions *ui.Sessions) (*Gateway, error) {
	g := &Gateway{
		cfg:        cfg,
		log:        log.With("gateway", cfg.Gateway.ID),
		health:     health.New(exportGrace),
		clock:      clock.OS(Built()),
		conns:      map[string]*connRun{},
		cmdMethods: map[string]bool{},
		logs:       logs,
		host:       newHost(cfg.Gateway.StateDir),
		sessions:   sessions,
	}
	g.dropLog = lograte.NewKeyed[string](maxDropLogKeys, time.Minute, metrics.Bounded("drop_log", ""))
	g.watchdog = newWatchdog(g.health, g.log.With("part", "watchdog"))
	g.watchdog.stateDir = cfg.Gateway.StateDir
	g.disk = newDisk(cfg.Gateway.StateDir, cfg.Gateway.DiskWarnBytes, g.health, g.log.With("part", "disk"))
	g.devices = newDeviceBook(g)
	g.devices.setDisabled(cfg)
	for i, cc := range cfg.Connectors {
		if cc.Enabled != nil && !*cc.Enabled {
			continue
		}
		c, err := g.newConnRun(cfg, i)
		if err != nil {
			g.closeConns()
			return nil, err
		}
		g.conns[c.name] = c
		g.order = append(g.order, c.name)
	}
	return g, nil
}

// Health is the gateway's one health model.
func (g *Gateway) Health() *health.Model { return g.health }

// Run runs the gateway until ctx ends: the managed broker (if any), the
// export sink, every connector and the RPC service. It returns the first
// fatal error (a broker port taken, the RPC port taken).
func (g *Gateway) Run(ctx context.Context) error {
	g.started = time.Now()
	g.mu.Lock()
	cfg := g.cfg // Run's own view: ApplyConnectors may swap g.cfg
	g.mu.Unlock()
	if err := os.MkdirAll(cfg.Gateway.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	errc := make(chan error, 4)
	var err error
	var wg sync.WaitGroup
	brokerCtx, stopBroker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBroker()
	url := cfg.Broker.URL
	if managed(cfg) {
		g.broker = broker.New(cfg.Broker, cfg.Gateway.ID, cfg.Gateway.StateDir, g.log.With("part", "broker"))
		g.broker.SetAccess(broker.Access{ExportTopic: cfg.Export.Topic, MaxMessage: cfg.RPC.MaxBody})
		g.maxPayload = cfg.RPC.MaxBody
		g.broker.Health = g.health
		url = g.broker.URL()
		// A port someone else holds, or no mosquitto at all, is an
		// installation to fix before anything runs; whatever stops the
		// broker later never stops the gateway (broker.Run retries, and
		// readings wait in the export spool).
		if err := g.broker.Check(); err != nil {
			return fmt.Errorf("managed broker: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.broker.Run(brokerCtx); err != nil && brokerCtx.Err() == nil {
				g.log.Error("managed broker stopped; readings stay in the export spool", "error", err)
				g.health.Broker(err)
			}
		}()
	}
	// Readings waiting for a time source, from this run or an earlier one.
	if g.hold, err = openHold(cfg.Gateway.StateDir, g.log.With("part", "clock")); err != nil {
		stopBroker()
		wg.Wait()
		return err
	}
	defer g.hold.close()
	opts := g.exportOptions(cfg, url)
	if opts.Username, opts.Password, err = g.brokerLogin(cfg, config.BrokerExportUser); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	sink, err := export.New(opts)
	if err != nil {
		stopBroker()
		wg.Wait()
		return fmt.Errorf("export: %w", err)
	}
	g.export, g.sink = sink, sink
	bookCtx, stopBook := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBook()
	bookDone := make(chan struct{})
	go func() {
		defer close(bookDone)
		g.devices.run(bookCtx)
	}()
	sinkCtx, stopSink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSink()
	var sinkDone sync.WaitGroup
	sinkDone.Add(1)
	go func() {
		defer sinkDone.Done()
		if err := sink.Run(sinkCtx); err != nil && sinkCtx.Err() == nil {
			errc <- fmt.Errorf("export: %w", err)
		}
	}()

	connCtx, stopConns := context.WithCancel(ctx)
	defer stopConns()
	g.mu.Lock()
	g.connCtx = connCtx
	for _, name := range g.order {
		g.conns[name].start(connCtx)
	}
	nconns := len(g.order)
	g.mu.Unlock()
	wg.Add(2)
	go func() {
		defer wg.Done()
		g.releaseHeld(connCtx)
	}()
	go func() {
		defer wg.Done()
		g.disk.run(connCtx)
	}()
	// A gateway that fails to start stops every part it started, and
	// waits for them: the next one (a rollback) needs the spool, the
	// broker's port and persistence.
	runErr := g.startRPC(connCtx, cfg, url, errc, &wg)
	if runErr == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.watchdog.run(connCtx)
		}()
		g.log.Info("gateway running", "version", Version, "connectors", nconns, "state_dir", cfg.Gateway.StateDir, "broker", url)
		select {
		case <-ctx.Done():
		case runErr = <-errc:
		}
	}
	g.log.Info("gateway stopping")
	stopConns()
	g.closeConns()
	stopBook()
	<-bookDone
	if g.handover.Load() {
		g.devices.stop("")
	} else {
		g.devices.stop("stopped")
	}
	stopSink()
	sinkDone.Wait()
	stopBroker()
	wg.Wait()
	return runErr
}

// closeConns stops every running connector.
func (g *Gateway) closeConns() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, name := range g.order {
		g.conns[name].stop()
	}
}

// releaseHeld exports the readings held for the clock once a time source
// has answered, or the hold's time is up, or the hold is full: in order,
// re-stamped (see restamp), then lets new readings go straight to the
// export again. While readings are held it looks every second (and makes
// them durable); while none are, it sleeps until the first is.
func (g *Gateway) releaseHeld(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if !g.hold.active() {
			t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-g.hold.opened:
			}
			t.Reset(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.hold.sync()
		if !g.hold.active() || g.clock.Hold() && !g.hold.full() {
			continue
		}
		for g.hold.active() && ctx.Err() == nil {
			if err := g.releaseBatch(ctx); err != nil {
				if ctx.Err() == nil {
					g.log.Warn("clock hold: releasing held readings; trying again in a second", "err", err)
				}
				break
			}
		}
	}
}

// releaseBatch exports up to 1 MiB of held messages.
func (g *Gateway) releaseBatch(ctx context.Context) error {
	done, lines, err := g.hold.batch(1 << 20)
	if err != nil || len(lines) == 0 {
		return err
	}
	for i, line := range lines {
		m, rs, err := decodeHeld(line.data)
		if line.data == nil {
			err = fmt.Errorf("a held message longer than %d bytes", maxHeldLine)
		}
		if err != nil {
			g.log.Error("clock hold: a held message is damaged and lost", "err", err)
			done = line.end
			continue
		}
		moved, known := g.clock.Moved(m.Mark)
		restamp(rs, m.Mark.Wall, moved, known)
		err = g.send(ctx, m.Topic, m.Device, rs, sendMetrics{
			out:      metrics.ReadingsOut.WithLabelValues(m.Conn),
			tooLarge: metrics.ReadingsDropped.WithLabelValues(m.Conn, "too_large"),
		}, g.log)
		if err != nil {
			// It stays held (a full disk, or the gateway stopping).
			g.hold.released(done, i)
			return err
		}
		done = line.end
	}
	g.hold.released(done, len(lines))
	return nil
}

func managed(cfg *config.Config) bool { return cfg.Broker.Managed == nil || *cfg.Broker.Managed }

// brokerLogin is what osgate's client user (config.BrokerExportUser or
// config.BrokerRPCUser) logs in to the broker with: the login the managed
// broker made for it, or broker.username and broker.password for a broker
// someone else runs.
func (g *Gateway) brokerLogin(cfg *config.Config, user string) (string, string, error) {
	if g.broker == nil {
		return cfg.Broker.Username, cfg.Broker.Password, nil
	}
	own, err := g.broker.Clients()
	if err != nil {
		return "", "", err
	}
	if user == config.BrokerRPCUser {
		return own.RPC.Username, own.RPC.Password, nil
	}
	return own.Export.Username, own.Export.Password, nil
}

func (g *Gateway) exportOptions(cfg *config.Config, url string) export.Options {
	e := cfg.Export
	qos := 1
	if e.QoS != nil {
		qos = *e.QoS
	}
	return export.Options{
		URL:        url,
		ClientID:   e.ClientID,
		QoS:        byte(qos),
		Retain:     e.Retain,
		StoreDir:   cfg.Gateway.StateDir + "/export",
		QueueLimit: e.QueueLimit,
		Broker:     g.exportBroker(),
		Logger:     g.log.With("part", "export"),
		Health:     g.health,
		Will:       g.devices.will(),
		// The will may have said "offline" while the connection was down.
		OnReconnect: g.devices.reconnected,
		// Each time the bridge is up, the cloud gets every state again.
		Watch: &export.Watch{Topic: topic.BridgeStatus(cfg.Gateway.ID), Handle: g.devices.bridge},
	}
}

// exportBroker is the managed broker as the export sink sees it, or nil
// (an interface holding no *broker.Broker) for an unmanaged one.
func (g *Gateway) exportBroker() export.Broker {
	if g.broker == nil {
		return nil
	}
	return g.broker
}
