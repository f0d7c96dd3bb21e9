package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MosquittoOptions shape the conf StartMosquitto writes.
type MosquittoOptions struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// Persistence keeps sessions and queued messages in the peer's
	// directory across Stop/Kill and Start (autosave every second).
	Persistence bool
	// Users, when set, turns anonymous access off and writes a password
	// file with these user → password pairs.
	Users map[string]string
	// TLS makes the listener TLS-only with a certificate for 127.0.0.1
	// signed by a test CA (see CAFile); URL then starts with ssl://.
	TLS bool
	// Extra lines appended to the conf verbatim (a bridge, autosave
	// tuning, ...).
	Extra string
}

// Mosquitto is a running (or stopped) Mosquitto owned by one test. Call
// Start from the test's goroutine (it fails the test if the broker does not
// come up); Stop and Kill may be called from any goroutine.
type Mosquitto struct {
	t    testing.TB
	bin  string
	dir  string
	conf string
	port int
	tls  bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *Buffer
}

// StartMosquitto writes a conf into a fresh temporary directory and starts
// /usr/sbin/mosquitto (or mosquitto on PATH) on a loopback port, waiting up
// to 30 s until it accepts connections. The broker is killed when the test
// ends.
func StartMosquitto(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	m := &Mosquitto{
		t:    t,
		bin:  LookPath(t, "mosquitto", "mosquitto"),
		dir:  t.TempDir(),
		port: opts.Port,
		tls:  opts.TLS,
		log:  &Buffer{},
	}
	if m.port == 0 {
		m.port = FreePort(t)
	}
	conf, err := m.writeConf(opts)
	if err != nil {
		t.Fatalf("testpeer: mosquitto conf: %v", err)
	}
	m.conf = conf
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("testpeer: mosquitto on %s, log tail:\n%s", m.Addr(), tail(m.Log(), 4000))
		}
	})
	m.Start()
	return m
}

func (m *Mosquitto) writeConf(opts MosquittoOptions) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", m.port)
	if os.Geteuid() == 0 {
		// Started as root, mosquitto would switch to the mosquitto user,
		// who cannot write the test's temporary directory.
		b.WriteString("user root\n")
	}
	b.WriteString("log_dest stderr\nlog_type all\nlog_timestamp_format %H:%M:%S\n")
	b.WriteString("max_queued_messages 1000000\nmax_queued_bytes 0\n")
	if opts.Persistence {
		fmt.Fprintf(&b, "persistence true\npersistence_location %s/\nautosave_interval 1\n", m.dir)
	} else {
		b.WriteString("persistence false\n")
	}
	if len(opts.Users) > 0 {
		pw := filepath.Join(m.dir, "passwd")
		if err := writePasswordFile(pw, opts.Users); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		b.WriteString("allow_anonymous true\n")
	}
	if opts.TLS {
		if err := writeTestCerts(m.dir); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "cafile %s\ncertfile %s\nkeyfile %s\n",
			m.CAFile(), filepath.Join(m.dir, "server.pem"), filepath.Join(m.dir, "server.key"))
	}
	if opts.Extra != "" {
		b.WriteString(opts.Extra)
		b.WriteString("\n")
	}
	p := filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}

// Start starts the broker (again) on the same port with the same conf and
// persistence directory, and waits until it accepts connections. Starting a
// running broker fails the test.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		m.t.Fatalf("testpeer: mosquitto on %s already running", m.Addr())
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = m.log
	cmd.Stderr = m.log
	// The broker dies with the test process, even when that is SIGKILLed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		m.t.Fatalf("testpeer: start %s: %v", m.bin, err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			m.mu.Lock()
			m.cmd = nil
			m.mu.Unlock()
			m.t.Fatalf("testpeer: mosquitto on %s exited at start: %v\n%s", m.Addr(), cmd.ProcessState, tail(m.Log(), 4000))
		default:
		}
		if dialOK(m.Addr()) {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("testpeer: mosquitto on %s not listening after 30s\n%s", m.Addr(), tail(m.Log(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the broker to exit (it saves its
// persistence file on the way out).
func (m *Mosquitto) Stop() { m.signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits: no persistence is saved beyond the last
// autosave.
func (m *Mosquitto) Kill() { m.signal(syscall.SIGKILL) }

func (m *Mosquitto) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Running reports whether the broker process is up.
func (m *Mosquitto) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// Addr is "127.0.0.1:PORT".
func (m *Mosquitto) Addr() string { return Addr(m.port) }

// Port is the listener's port.
func (m *Mosquitto) Port() int { return m.port }

// URL is "tcp://127.0.0.1:PORT" (ssl:// with TLS) for MQTT clients.
func (m *Mosquitto) URL() string {
	if m.tls {
		return "ssl://" + m.Addr()
	}
	return "tcp://" + m.Addr()
}

// Dir is the broker's directory (conf, persistence, certificates).
func (m *Mosquitto) Dir() string { return m.dir }

// CAFile is the PEM file of the CA that signed a TLS broker's certificate.
func (m *Mosquitto) CAFile() string { return filepath.Join(m.dir, "ca.pem") }

// Log is everything the broker wrote to stdout and stderr so far, across
// restarts.
func (m *Mosquitto) Log() string { return m.log.String() }

func dialOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
