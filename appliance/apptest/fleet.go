package apptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/testpeer"
)

// The cloud broker's logins: the gateways' bridges, and the operator's
// `osgate fleet`.
const (
	GatewayUser      = "gateways"
	GatewayPassword  = "gw-secret"
	OperatorUser     = "operator"
	OperatorPassword = "op-secret"
	// OperatorSigner is the operator key's name in the gateways'
	// rpc.operator_keys.
	OperatorSigner = "ops"
)

// operatorACL is the fleet user's access of docs/fleet.md.
const operatorACL = `user ` + OperatorUser + `
topic read status/+
topic read status/+/bridge
topic write rpc/+/request/+
topic read rpc/+/response/+
`

// CloudOptions shape the cloud side StartCloud starts.
type CloudOptions struct {
	// Users are logins besides the gateways' and the operator's.
	Users map[string]string
	// ACL is appended to the broker's ACL file (rules of Users).
	ACL string
	// Extra lines for mosquitto.conf.
	Extra string
	// ReadOnlyOperator gives the operator only what a rollout or a
	// configuration push needs: reading the status documents.
	ReadOnlyOperator bool
}

// Cloud is the fleet's cloud side in a test: a TLS Mosquitto that the
// gateways bridge to with one login and the operator reaches with another,
// held to the operator ACL of docs/fleet.md; an operator key; and the fleet
// file `osgate fleet -f` reads.
type Cloud struct {
	Broker *testpeer.Mosquitto
	// FleetFile is the operator's fleet.json: the broker over TLS with
	// the operator's login, the operator key and its signer name.
	FleetFile string
	// OperatorKey is the operator's private key file (the format of
	// `osgate rpc keygen`), OperatorPublic its public half for the
	// gateways' rpc.operator_keys.
	OperatorKey, OperatorPublic string
}

// StartCloud starts the cloud broker and writes the operator's files.
func StartCloud(t testing.TB, o CloudOptions) *Cloud {
	t.Helper()
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	opACL := operatorACL
	if o.ReadOnlyOperator {
		opACL = "user " + OperatorUser + "\ntopic read status/+\ntopic read status/+/bridge\n"
	}
	if err := os.WriteFile(acl, []byte("user "+GatewayUser+"\ntopic readwrite #\n\n"+opACL+"\n"+o.ACL), 0o644); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{GatewayUser: GatewayPassword, OperatorUser: OperatorPassword}
	for u, p := range o.Users {
		users[u] = p
	}
	c := &Cloud{Broker: testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true, Users: users,
		Extra: strings.TrimSpace("acl_file " + acl + "\n" + o.Extra)})}
	pub, priv, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c.OperatorKey, c.OperatorPublic = filepath.Join(dir, "ops.key"), pub
	pwFile := filepath.Join(dir, "broker-password")
	c.FleetFile = filepath.Join(dir, "fleet.json")
	for name, data := range map[string]string{
		c.OperatorKey: priv + "\n",
		pwFile:        OperatorPassword + "\n",
		c.FleetFile: fmt.Sprintf(`{"broker": %q, "ca_file": %q, "username": %q, "password_file": %q, "operator_key": %q, "signer": %q}`,
			c.Broker.URL(), c.Broker.CAFile(), OperatorUser, pwFile, c.OperatorKey, OperatorSigner),
	} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Bridge is the "bridge" object of a gateway's broker block that connects
// it to this cloud (TLS, the gateways' login) with the keepalive given
// ("": the default).
func (c *Cloud) Bridge(keepalive string) string {
	ka := ""
	if keepalive != "" {
		ka = fmt.Sprintf(`, "keepalive": %q`, keepalive)
	}
	return fmt.Sprintf(`{"address": %q, "ca_file": %q, "username": %q, "password": %q%s}`,
		c.Broker.Addr(), c.Broker.CAFile(), GatewayUser, GatewayPassword, ka)
}

// OperatorKeys is the rpc.operator_keys array that lets the operator key
// sign requests of every scope.
func (c *Cloud) OperatorKeys() string {
	return fmt.Sprintf(`[{"name": %q, "public_key": %q, "scope": "admin"}]`, OperatorSigner, c.OperatorPublic)
}

// Process is a gateway in a process of its own (`osgate run`, or a test
// binary that runs osgate's main), started again whenever it exits, as
// gokrazy restarts a service and boots a rebooted device, until Stop.
type Process struct {
	ID      string
	command func() *exec.Cmd
	log     testpeer.Buffer

	mu       sync.Mutex
	cmd      *exec.Cmd
	starts   int
	stopping bool
	done     chan struct{}
}

// StartProcess runs the command that command makes (a new one for each
// start) until the test ends or Stop. The process gets SIGKILL if the test
// process dies.
func StartProcess(t testing.TB, id string, command func() *exec.Cmd) *Process {
	t.Helper()
	p := &Process{ID: id, command: command, done: make(chan struct{})}
	go p.supervise(t)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

func (p *Process) supervise(t testing.TB) {
	defer close(p.done)
	for {
		cmd := p.command()
		cmd.Stdout, cmd.Stderr = &p.log, &p.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		err := cmd.Start()
		p.cmd = cmd
		p.starts++
		p.mu.Unlock()
		if err != nil {
			t.Errorf("gateway %s: %v", p.ID, err)
			return
		}
		err = cmd.Wait()
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		fmt.Fprintf(&p.log, "=== %s: process ended (%v): starting it again, as gokrazy would\n", p.ID, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// Starts is how often the process started (1: it never ended).
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Pid is the running process's id (0 before the first start).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Log is what the process wrote to stdout and stderr, across restarts.
func (p *Process) Log() string { return p.log.String() }

// Terminate sends SIGTERM and no longer restarts the process; Stop waits
// for it. Terminating many before stopping them lets them end together.
func (p *Process) Terminate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopping = true
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// Stop terminates the process and waits up to a minute for it to end
// (then kills it and fails the test). When the test failed, the end of
// the process's log is shown.
func (p *Process) Stop(t testing.TB) {
	p.Terminate()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.mu.Lock()
		_ = p.cmd.Process.Kill()
		p.mu.Unlock()
		<-p.done
		t.Errorf("gateway %s did not stop within 60 s of SIGTERM", p.ID)
	}
	if t.Failed() {
		t.Logf("gateway %s log (last 6000 bytes):\n%s", p.ID, Tail(p.log.String(), 6000))
	}
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
