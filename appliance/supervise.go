package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/clock"
	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/appliance/ui"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/redact"
)

// ConfigSource delivers the configurations to run (config/source: remote
// → cache → local file), takes back the ones that failed, and reports.
type ConfigSource interface {
	Next(ctx context.Context) (source.Update[*config.Config], error)
	MarkBad(version, reason string) error
	Status() source.Status
}

// Supervise runs the gateway on the configurations src delivers until ctx
// ends. A new configuration that changes only connectors is applied in
// place: the connectors that changed restart, the others keep polling
// without a gap. One that changes the gateway, broker, export or RPC
// settings restarts the gateway in-process; queued readings wait on disk
// (export spool, MQTT store) meanwhile, so none is dropped. A configuration
// that fails to start, or leaves the gateway unhealthy or with every
// connector failing (health.Report.TrialFailure) for gateway.config_grace,
// is rolled back to the previous one and marked bad.
func Supervise(ctx context.Context, src ConfigSource, log *slog.Logger) error {
	return NewSupervisor(src, log).Run(ctx)
}

// Supervisor is Supervise with parts that outlive one gateway: extra RPC
// methods (the OTA agent's), and the health of whichever gateway runs now.
type Supervisor struct {
	src     ConfigSource
	log     *slog.Logger
	scrub   *redact.Handler // cuts the running configurations' secrets out of every log line
	methods map[string]rpc.Method
	current atomic.Pointer[Gateway]
	clock   *clock.Clock
	ota     func() *export.OTAStatus
	// logs keeps the recent log lines across gateways, after scrub;
	// sessions are the technician's pages' sign-ins, across gateways.
	logs     *logRing
	sessions *ui.Sessions
}

// SetOTA makes the update agent's state (status) part of the status
// document of every gateway it runs (call it before Run). The agent calls
// StatusChanged when its state changes.
func (sv *Supervisor) SetOTA(status func() *export.OTAStatus) { sv.ota = status }

// StatusChanged tells the running gateway that what SetOTA gives (or
// the configuration source's status) changed, so that its status document
// follows at once. It does not block.
func (sv *Supervisor) StatusChanged() {
	if g := sv.current.Load(); g != nil {
		g.statusChanged()
	}
}

// SetClock makes c the clock of every gateway it runs (call it before
// Run); without one they trust the operating system's clock.
func (sv *Supervisor) SetClock(c *clock.Clock) { sv.clock = c }

// NewSupervisor prepares a Supervisor; Run runs it.
func NewSupervisor(src ConfigSource, log *slog.Logger) *Supervisor {
	logs := newLogRing()
	h := redact.NewHandler(tee{log.Handler(), logs.handler()})
	return &Supervisor{src: src, log: slog.New(h), scrub: h, methods: map[string]rpc.Method{},
		logs: logs, sessions: ui.NewSessions()}
}

// AddMethods adds JSON-RPC methods, each with the scope it needs, to
// every gateway it runs. Call it before Run.
func (sv *Supervisor) AddMethods(m map[string]rpc.Method) {
	for name, method := range m {
		sv.methods[name] = method
	}
}

// Health is the running gateway's health report; while a new
// configuration restarts it, it is degraded ("gateway restarting").
func (sv *Supervisor) Health() health.Report {
	if g := sv.current.Load(); g != nil {
		return g.health.Report()
	}
	return health.Report{Status: health.Degraded, Reasons: []string{"gateway restarting"}, Live: true}
}

// Run runs gateways on the configurations the source delivers until ctx
// ends (see Supervise).
func (sv *Supervisor) Run(ctx context.Context) error {
	src, log := sv.src, sv.log
	if n, ok := src.(interface{ OnChange(func()) }); ok {
		n.OnChange(sv.StatusChanged) // its errors and versions are in the status document
	}
	cur, err := src.Next(ctx)
	if err != nil {
		return err
	}
	updates := make(chan source.Update[*config.Config])
	go func() {
		for {
			u, err := src.Next(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				log.Warn("config source", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Second):
				}
				continue
			}
			select {
			case updates <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	s := &supervisor{src: src, log: log, sv: sv}
	err = s.run(ctx, cur, updates)
	if err != nil {
		err = scrubbedError{msg: s.scrub(err.Error()), err: err}
	}
	return err
}

// scrubbedError is an error whose text had the configurations' secrets
// cut out: main prints it.
type scrubbedError struct {
	msg string
	err error
}

func (e scrubbedError) Error() string { return e.msg }
func (e scrubbedError) Unwrap() error { return e.err }

type supervisor struct {
	src  ConfigSource
	log  *slog.Logger
	sv   *Supervisor
	prev *source.Update[*config.Config] // the last good one, while cur is on trial
	// trial is prev != nil, for the status document (read by the
	// gateway's goroutines).
	trial atomic.Bool
	// secrets are those of the configurations this process ran; status
	// reads them from the gateway's goroutines.
	secretsMu sync.Mutex
	secrets   []string
}

// running notes a configuration about to run: its secrets are cut out of
// the log from now on, with those of the ones before.
func (s *supervisor) running(c *config.Config) {
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	for _, v := range c.Secrets() {
		if !slices.Contains(s.secrets, v) {
			s.secrets = append(s.secrets, v)
		}
	}
	if n := len(s.secrets) - maxSecrets; n > 0 {
		s.secrets = slices.Delete(s.secrets, 0, n) // the oldest configurations' first
	}
	s.sv.scrub.SetSecrets(slices.Clone(s.secrets))
}

// maxSecrets bounds the secret values remembered: a fleet could send any
// number of configurations.
const maxSecrets = 1024

// status is the source's status with the secrets cut out of its texts
// and the query (a presigned URL's signature) out of the fleet URL.
func (s *supervisor) status() source.Status {
	st := s.src.Status()
	st.LastError = s.scrub(st.LastError)
	if st.URL != "" {
		st.URL = redact.URL(st.URL)
	}
	bad := make([]source.BadVersion, len(st.BadVersions))
	for i, b := range st.BadVersions {
		b.Reason = s.scrub(b.Reason)
		bad[i] = b
	}
	st.BadVersions = bad
	return st
}

// scrub cuts the secrets of every configuration run so far out of text.
func (s *supervisor) scrub(text string) string {
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	return redact.Scrub(text, s.secrets)
}

func (s *supervisor) run(ctx context.Context, cur source.Update[*config.Config], updates <-chan source.Update[*config.Config]) error {
	for {
		s.running(cur.Config)
		g, err := newGateway(cur.Config, s.log, s.sv.logs, s.sv.sessions)
		if err != nil {
			if s.rollback(&cur, err.Error()) {
				continue
			}
			return err
		}
		g.configStatus = s.status
		g.configTrial = s.trial.Load
		g.extraMethods = s.sv.methods
		g.otaStatus = s.sv.ota
		if s.sv.clock != nil {
			g.clock = s.sv.clock
		}
		gctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- g.Run(gctx) }()
		s.sv.current.Store(g)
		next, back, err := s.watch(ctx, g, &cur, done, updates)
		s.sv.current.Store(nil)
		if next != nil {
			g.handover.Store(true) // the next gateway says "online" at once
		}
		cancel()
		if next == nil {
			// The gateway stopped: ctx ended, or it failed (a port taken).
			if err != nil && ctx.Err() == nil && s.rollback(&cur, err.Error()) {
				continue
			}
			return err
		}
		<-done
		if back {
			// Rolled back: the previous configuration runs again, and
			// is not on trial.
			s.log.Info("restarting the gateway on the previous configuration", "version", short(next.Version), "origin", next.Origin)
			cur = *next
			continue
		}
		s.log.Info("restarting the gateway for the new configuration", "version", short(next.Version), "origin", next.Origin)
		prev := cur // cur is about to be overwritten: keep a copy, not &cur
		s.setPrev(&prev, nil)
		cur = *next
	}
}

// trialCheck is how often the health of a configuration on trial is
// looked at.
const trialCheck = 250 * time.Millisecond

// watch runs while g does: it applies connector-only updates in place,
// judges the configuration on trial, and returns a configuration that
// needs a restart (back: the previous one, rolled back to), or nil when g
// stopped (with its error).
func (s *supervisor) watch(ctx context.Context, g *Gateway, cur *source.Update[*config.Config], done <-chan error, updates <-chan source.Update[*config.Config]) (next *source.Update[*config.Config], back bool, err error) {
	trialStart, badSince := time.Now(), time.Time{}
	tick := time.NewTicker(trialCheck)
	defer tick.Stop()
	for {
		if s.prev == nil {
			tick.Stop() // nothing on trial: no need to wake up
		}
		select {
		case <-ctx.Done():
			return nil, false, <-done
		case err := <-done:
			return nil, false, err
		case u := <-updates:
			if !sameOutsideConnectors(cur.Config, u.Config) {
				return &u, false, nil
			}
			s.running(u.Config)
			if err := g.ApplyConnectors(u.Config); err != nil {
				reason := s.scrub(err.Error())
				s.log.Error("config refused: it does not start", "version", short(u.Version), "err", reason)
				s.src.MarkBad(u.Version, reason)
				g.statusChanged() // its bad versions
				continue
			}
			s.log.Info("config applied in place", "version", short(u.Version), "origin", u.Origin)
			prev := *cur
			*cur = u
			s.setPrev(&prev, g)
			trialStart, badSince = time.Now(), time.Time{}
			tick.Reset(trialCheck)
		case <-tick.C:
			if s.prev == nil {
				continue
			}
			why := g.health.Report().TrialFailure()
			grace := cur.Config.Gateway.ConfigGrace
			switch {
			case why == "":
				badSince = time.Time{}
				if time.Since(trialStart) > grace {
					s.log.Info("config confirmed healthy", "version", short(cur.Version))
					s.setPrev(nil, g)
				}
			case badSince.IsZero():
				badSince = time.Now()
			case time.Since(badSince) > grace:
				reason := s.scrub("unhealthy for " + grace.String() + ": " + why)
				s.log.Error("config rolled back", "version", short(cur.Version), "reason", reason)
				s.src.MarkBad(cur.Version, reason)
				prev := *s.prev
				s.setPrev(nil, g)
				if !sameOutsideConnectors(cur.Config, prev.Config) {
					return &prev, true, nil
				}
				if err := g.ApplyConnectors(prev.Config); err != nil {
					return &prev, true, nil // restart on it instead
				}
				*cur = prev
			}
		}
	}
}

// setPrev keeps the configuration to go back to while the running one
// is on trial (nil: none is), and has g, the running gateway (nil: none
// runs yet), publish its status document at once.
func (s *supervisor) setPrev(prev *source.Update[*config.Config], g *Gateway) {
	s.prev = prev
	s.trial.Store(prev != nil)
	if g != nil {
		g.statusChanged()
	}
}

// rollback replaces cur by the previous good configuration, if there is
// one, marking cur bad.
func (s *supervisor) rollback(cur *source.Update[*config.Config], reason string) bool {
	if s.prev == nil {
		return false
	}
	reason = s.scrub(reason) // kept in config.db and shown in the status
	s.log.Error("config rolled back: it does not start", "version", short(cur.Version), "err", reason)
	s.src.MarkBad(cur.Version, reason)
	*cur = *s.prev
	s.setPrev(nil, nil)
	s.log.Info("restarting the gateway on the previous configuration", "version", short(cur.Version), "origin", cur.Origin)
	return true
}

// sameOutsideConnectors reports whether two configurations differ only in
// their connectors (and remote block, which takes effect at restart).
func sameOutsideConnectors(a, b *config.Config) bool {
	x, y := *a, *b
	x.Connectors, y.Connectors = nil, nil
	x.Remote, y.Remote = nil, nil
	return jsonEqual(x, y)
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func short(version string) string {
	if len(version) > 12 {
		return version[:12]
	}
	return version
}

// ApplyConnectors switches the running connectors to those of cfg, which
// must differ from the running configuration only in its connectors:
// removed ones stop, new ones start, changed ones restart, and unchanged
// ones keep running untouched. Nothing changes if a new connector cannot
// be built.
func (g *Gateway) ApplyConnectors(cfg *config.Config) error {
	g.mu.Lock()
	err := g.applyConnectors(cfg)
	g.mu.Unlock()
	if err == nil {
		g.registerCommands() // new connectors may bring new commands
	}
	return err
}

// applyConnectors is ApplyConnectors with g.mu held.
func (g *Gateway) applyConnectors(cfg *config.Config) error {
	old := map[string]config.Connector{}
	for _, c := range g.cfg.Connectors {
		old[c.Name] = c
	}
	fresh := map[string]*connRun{}
	var order []string
	for i, cc := range cfg.Connectors {
		if cc.Enabled != nil && !*cc.Enabled {
			continue
		}
		order = append(order, cc.Name)
		if run := g.conns[cc.Name]; run != nil && jsonEqual(old[cc.Name], cc) {
			continue
		}
		c, err := g.newConnRun(cfg, i)
		if err != nil {
			for _, f := range fresh {
				f.conn.Close()
			}
			return err
		}
		fresh[cc.Name] = c
	}
	var stopped, started, kept []string
	for _, name := range g.order {
		if _, still := fresh[name]; still || !contains(order, name) {
			if f := fresh[name]; f != nil {
				f.inherit(g.conns[name])
			}
			g.conns[name].stop()
			delete(g.conns, name)
			stopped = append(stopped, name)
		}
	}
	g.devices.setDisabled(cfg)
	for _, name := range removedDevices(g.cfg, cfg) {
		g.devices.clear(name)
	}
	for _, name := range order {
		if c := fresh[name]; c != nil {
			g.conns[name] = c
			if g.connCtx != nil {
				c.start(g.connCtx)
			}
			started = append(started, name)
		} else {
			kept = append(kept, name)
		}
	}
	g.order, g.cfg = order, cfg
	g.log.Info("connectors applied", "stopped", stopped, "started", started, "unchanged", kept)
	return nil
}

// removedDevices lists the devices of a that b does not have.
func removedDevices(a, b *config.Config) []string {
	kept := map[string]bool{}
	for _, cc := range b.Connectors {
		for _, d := range cc.Devices {
			kept[d.Name] = true
		}
	}
	var out []string
	for _, cc := range a.Connectors {
		for _, d := range cc.Devices {
			if !kept[d.Name] {
				out = append(out, d.Name)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// staticSource is a ConfigSource of one configuration that never changes:
// the embedded default.
type staticSource struct {
	cfg  *config.Config
	sent bool
	name source.Origin
}

// StaticSource serves one configuration, e.g. the embedded default.
func StaticSource(cfg *config.Config, origin string) ConfigSource {
	return &staticSource{cfg: cfg, name: source.Origin(origin)}
}

func (s *staticSource) Next(ctx context.Context) (source.Update[*config.Config], error) {
	if !s.sent {
		s.sent = true
		return source.Update[*config.Config]{Config: s.cfg, Origin: s.name, Version: string(s.name)}, nil
	}
	<-ctx.Done()
	return source.Update[*config.Config]{}, ctx.Err()
}

func (s *staticSource) MarkBad(version, reason string) error {
	return fmt.Errorf("the %s configuration cannot be replaced", s.name)
}

func (s *staticSource) Status() source.Status {
	return source.Status{Source: s.name, Version: string(s.name), BadVersions: []source.BadVersion{}}
}
