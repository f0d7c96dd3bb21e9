package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
)

const (
	startWithin  = 30 * time.Second // for mosquitto to listen after a start
	stopGrace    = 10 * time.Second // after SIGTERM before SIGKILL
	restartFirst = time.Second      // first pause before a restart
	restartMax   = 30 * time.Second // longest pause between restarts
	stableAfter  = time.Minute      // a run this long resets the back-off
)

var dialer = net.Dialer{Timeout: time.Second}

// Broker supervises a managed Mosquitto: it writes its conf, starts it,
// restarts it with back-off when it dies and stops it when its context
// ends. Exactly one Broker owns the process.
type Broker struct {
	cfg       config.Broker
	gatewayID string
	dir       string // stateDir/mosquitto
	stateDir  string
	log       *slog.Logger

	ready     chan struct{}
	readyOnce sync.Once

	access      Access // see SetAccess
	clientsOnce sync.Once
	clients     Clients
	clientsErr  error

	mu   sync.Mutex
	proc *process // the running process, for tests
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
		cfg:       cfg,
		gatewayID: gatewayID,
		stateDir:  stateDir,
		dir:       filepath.Join(stateDir, confDir),
		log:       logger.With("component", "broker", "listen", listen),
		ready:     make(chan struct{}),
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
// nil. It returns an error if the broker cannot start the first time: the
// port is taken, the binary is missing, or mosquitto rejects the conf.
func (b *Broker) Run(ctx context.Context) error {
	host, port, err := listenAddr(b.cfg.Listen)
	if err != nil {
		return err
	}
	if err := checkPortFree(host, port); err != nil {
		return err
	}
	bin, err := findBinary(b.cfg.Binary)
	if err != nil {
		return err
	}
	conf, err := b.writeFiles()
	if err != nil {
		return err
	}
	wait := restartFirst
	for started := false; ; started = true {
		p, err := startProcess(bin, conf, b.log)
		if err == nil {
			err = p.waitListening(ctx, b.dialAddr(), startWithin)
			if err != nil {
				p.stop(stopGrace)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !started {
				return fmt.Errorf("broker: first start of %s with %s: %w", bin, conf, err)
			}
			b.log.Error("broker: restart failed; trying again", "error", err, "retry_in", wait)
		} else {
			b.setProc(p)
			b.readyOnce.Do(func() { close(b.ready) })
			b.log.Info("broker: mosquitto running", "pid", p.cmd.Process.Pid, "conf", conf)
			since := time.Now()
			select {
			case <-ctx.Done():
				p.stop(stopGrace)
				b.setProc(nil)
				b.log.Info("broker: mosquitto stopped")
				return nil
			case <-p.done:
			}
			b.setProc(nil)
			if time.Since(since) >= stableAfter {
				wait = restartFirst
			}
			b.log.Error("broker: mosquitto died; restarting it", "exit", p.err, "ran", time.Since(since).Round(time.Millisecond),
				"retry_in", wait, "output_tail", p.tail.String())
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(wait*2, restartMax)
		metrics.BrokerRestarts.Inc()
	}
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
	if err := writeAuth(b.dir, b.cfg, b.gatewayID, b.access, own); err != nil {
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
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("broker: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("broker: write %s: %w", path, err)
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
