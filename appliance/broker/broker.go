package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/atomicfile"
	"github.com/osgate/osgate/internal/backoff"
	"github.com/osgate/osgate/internal/fswatch"
)

const (
	startWithin  = 30 * time.Second // for mosquitto to listen after a start
	stopGrace    = 10 * time.Second // after SIGTERM before SIGKILL
	restartFirst = time.Second      // first pause before a restart
	restartMax   = 30 * time.Second // longest pause between restarts
	stableAfter  = 10 * time.Second // a run this long resets the back-off
)

// restartBackoff is the pause before a restart after failures in a row.
var restartBackoff = backoff.Policy{First: restartFirst, Max: restartMax}

var dialer = net.Dialer{Timeout: time.Second}

// Broker supervises a managed Mosquitto: it writes its conf, starts it,
// restarts it with back-off when it dies and stops it when its context
// ends. Exactly one Broker owns the process. It also tells the export sink
// what the broker has saved (it implements export.Broker).
type Broker struct {
	cfg       config.Broker
	gatewayID string
	dir       string // stateDir/mosquitto
	stateDir  string
	log       *slog.Logger
	// Health, if set before Run, hears whether the broker runs and, if
	// not, why.
	Health *health.Model
	// stableAfter: a run at least this long resets the restart back-off.
	stableAfter time.Duration

	ready     chan struct{}
	readyOnce sync.Once

	access      Access // see SetAccess
	clientsOnce sync.Once
	clients     Clients
	clientsErr  error

	mu        sync.Mutex
	proc      *process      // the running process
	gen       uint64        // counts starts of the process
	dbID      uint64        // identity of the saved state (see prepareDB)
	nextStart chan struct{} // closed when the next process listens

	saves *fswatch.Watch // of mosquitto.db while Run runs; nil: no notices
	looks atomic.Int64   // how often Persist looked at mosquitto.db

	// When Persist last read what a save holds, and how long that took
	// (used by the one caller of Persist, the export's checkpoint).
	summaryAt   time.Time
	summaryCost time.Duration
}

// New returns a Broker for cfg whose persistence lives under
// stateDir/mosquitto.
func New(cfg config.Broker, gatewayID, stateDir string, logger *slog.Logger) *Broker {
	if logger == nil {
		logger = slog.Default()
	}
	listen := cfg.Listen
	if listen == "" {
		listen = defaultListen
	}
	return &Broker{
		cfg:         cfg,
		gatewayID:   gatewayID,
		stateDir:    stateDir,
		dir:         filepath.Join(stateDir, confDir),
		log:         logger.With("component", "broker", "listen", listen),
		stableAfter: stableAfter,
		ready:       make(chan struct{}),
		nextStart:   make(chan struct{}),
	}
}

// SetAccess tells the broker what osgate's own clients do, for its ACL and
// message size limit; call it before Run. Without it, the defaults: the
// export topic "telemetry/{gateway}/{device}", messages up to 1 MiB.
func (b *Broker) SetAccess(a Access) { b.access = a }

// Clients are the logins of osgate's own clients (the export, the cloud
// RPC responder), made on first use and kept in the state dir
// (ClientsFile).
func (b *Broker) Clients() (Clients, error) {
	b.clientsOnce.Do(func() { b.clients, b.clientsErr = loadClients(b.stateDir) })
	return b.clients, b.clientsErr
}

// URL is the MQTT URL clients on this machine use to reach the broker.
func (b *Broker) URL() string { return "tcp://" + b.dialAddr() }

// Ready is closed once the broker first accepts connections.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

func (b *Broker) dialAddr() string {
	host, port, err := listenAddr(b.cfg.Listen)
	if err != nil {
		return b.cfg.Listen
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// Check fails, naming the fix, if the broker could not start: its port is
// taken or the mosquitto binary is missing. The gateway calls it before
// starting anything else, so that it does not run half-way into a broker
// someone else owns.
func (b *Broker) Check() error {
	host, port, err := listenAddr(b.cfg.Listen)
	if err != nil {
		return err
	}
	if err := checkPortFree(host, port); err != nil {
		return err
	}
	_, err = findBinary(b.cfg.Binary)
	return err
}

// Run writes the conf, starts mosquitto and keeps it running until ctx
// ends, then stops it (SIGTERM, so it saves its persistence) and returns
// nil. It returns an error only for what Check finds: the port is taken
// or the binary is missing. Anything else that keeps mosquitto from
// running (a conf it refuses, a full disk, a crash at every start) is
// logged, reported to Health, and tried again with back-off, for as long
// as ctx lasts; a damaged mosquitto.db is moved aside (see prepareDB).
func (b *Broker) Run(ctx context.Context) error {
	if err := b.Check(); err != nil {
		return err
	}
	bin, _ := findBinary(b.cfg.Binary)
	b.watchSaves()
	defer b.unwatchSaves()
	failures := 0
	for {
		r := b.runOnce(ctx, bin)
		if ctx.Err() != nil {
			b.report(errors.New("stopped"))
			return nil
		}
		if r.ran >= b.stableAfter {
			failures = 0
		}
		if r.dbRefused {
			// The database was moved aside: start again at once.
			metrics.BrokerRestarts.Inc()
			continue
		}
		failures++
		wait := restartBackoff.Delay(failures)
		switch {
		case r.ran > 0:
			b.report(fmt.Errorf("mosquitto died (%v); restarting it", r.err))
			b.log.Error("broker: mosquitto died; restarting it", "exit", r.err, "ran", r.ran.Round(time.Millisecond),
				"retry_in", wait, "output_tail", r.tail)
		default:
			b.report(fmt.Errorf("mosquitto cannot start: %w", r.err))
			b.log.Error("broker: mosquitto cannot start; readings stay in the export spool; trying again",
				"error", r.err, "retry_in", wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			b.report(errors.New("stopped"))
			return nil
		}
		metrics.BrokerRestarts.Inc()
	}
}

// runResult is how one run of mosquitto ended.
type runResult struct {
	ran       time.Duration // how long it listened (0: it did not start)
	err       error
	tail      string // its last output
	dbRefused bool   // it refused its database, which was moved aside
}

// runOnce starts mosquitto and returns when it exits or ctx ends (after
// stopping it).
func (b *Broker) runOnce(ctx context.Context, bin string) runResult {
	conf, err := b.writeFiles()
	if err != nil {
		return runResult{err: err}
	}
	b.prepareDB()
	b.mu.Lock()
	b.gen++
	b.mu.Unlock()
	p, err := startProcess(bin, conf, b.log)
	if err != nil {
		return runResult{err: err}
	}
	if err := p.waitListening(ctx, b.dialAddr(), startWithin); err != nil {
		p.stop(stopGrace)
		if ctx.Err() == nil && databaseRefused(p.tail.String()) {
			b.quarantine(fmt.Errorf("mosquitto refused it: %s", lastLines(p.tail.String(), 3)))
			return runResult{err: err, dbRefused: true}
		}
		return runResult{err: err}
	}
	b.mu.Lock()
	b.proc = p
	close(b.nextStart)
	b.nextStart = make(chan struct{})
	b.mu.Unlock()
	b.readyOnce.Do(func() { close(b.ready) })
	b.report(nil)
	b.log.Info("broker: mosquitto running", "pid", p.cmd.Process.Pid, "conf", conf)
	since := time.Now()
	select {
	case <-ctx.Done():
		p.stop(stopGrace)
		b.setProc(nil)
		b.log.Info("broker: mosquitto stopped")
		return runResult{ran: time.Since(since)}
	case <-p.done:
	}
	b.setProc(nil)
	return runResult{ran: max(time.Since(since), time.Nanosecond), err: p.err, tail: p.tail.String()}
}

// report tells Health and the metrics whether the broker runs.
func (b *Broker) report(err error) {
	if err == nil {
		metrics.BrokerUp.Set(1)
	} else {
		metrics.BrokerUp.Set(0)
	}
	if b.Health != nil {
		b.Health.Broker(err)
	}
}

// lastLines returns the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// writeFiles writes the password file, the ACL and the conf, returning
// the conf's path.
func (b *Broker) writeFiles() (string, error) {
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return "", fmt.Errorf("broker: create %s: %w", b.dir, err)
	}
	own, err := b.Clients()
	if err != nil {
		return "", err
	}
	cfg := b.cfg
	if cfg.PasswordFile != "" {
		pw, made, err := userPassword(cfg.PasswordFile)
		if err != nil {
			return "", err
		}
		if made {
			b.log.Info("broker: made a password for broker.username: clients log in with it", "user", cfg.Username, "password_file", cfg.PasswordFile)
		}
		cfg.Password = pw
	}
	if err := writeAuth(b.dir, cfg, b.gatewayID, b.access, own); err != nil {
		return "", err
	}
	text, err := Conf(b.cfg, b.gatewayID, b.stateDir, b.access)
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.dir, confFileName)
	if err := writeFile(path, text); err != nil {
		return "", err
	}
	return path, nil
}

// writeFile replaces path atomically; the files hold secrets (0600).
func writeFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// checkPortFree fails with an operator's hint if something listens on the
// broker's port already.
func checkPortFree(host string, port int) error {
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("broker: port %d (%s) is taken: %w; another broker may hold it "+
			"(Debian's mosquitto service: systemctl stop mosquitto && systemctl disable mosquitto), "+
			"or set broker.listen to a free port", port, addr, err)
	}
	l.Close()
	return nil
}

// watchSaves starts the watch of mosquitto.db that tells Persist when
// Mosquitto saved; without one Persist looks on a timer.
func (b *Broker) watchSaves() {
	var w *fswatch.Watch
	err := os.MkdirAll(b.dir, 0o700)
	if err == nil {
		w, err = fswatch.File(b.dbPath())
	}
	if err != nil {
		b.log.Debug("broker: no notice of Mosquitto's saves; the export looks for them on a timer", "reason", err)
		return
	}
	b.mu.Lock()
	b.saves = w
	b.mu.Unlock()
}

// unwatchSaves ends the watch; a Persist still waiting on it falls back
// to its timer.
func (b *Broker) unwatchSaves() {
	b.mu.Lock()
	w := b.saves
	b.saves = nil
	b.mu.Unlock()
	if w != nil {
		w.Close()
	}
}

func (b *Broker) setProc(p *process) {
	b.mu.Lock()
	b.proc = p
	b.mu.Unlock()
}

// pid is the running mosquitto's process id, or 0.
func (b *Broker) pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return 0
	}
	return b.proc.cmd.Process.Pid
}
