package modbus

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// The Modbus peer is Debian's python3-pymodbus 3.0.0 behind
// testdata/server.py; it must run with /usr/bin/python3 (the python3 first
// on PATH may be another one without pymodbus).
const python = "/usr/bin/python3"

// peer is a running testdata/server.py.
type peer struct {
	tcp, rtuTCP string // host:port, when served
	tty         string // client end of the pty pair, when served
	logPath     string // one line per request the server sees
	stop        func() // kills the server now (Cleanup does too)
	cmd         *exec.Cmd
}

type peerOpts struct {
	tcp, rtuTCP, rtu bool
	tick             time.Duration
	tcpAddr          string // serve TCP here instead of on a free port
	lateUnit         int    // a unit that answers only after arrive
}

// startPeer starts the server (and socat for a pty pair) and stops them when
// the test ends. It fails the test if either cannot start.
func startPeer(t testing.TB, o peerOpts) *peer {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("modbus peer: %s not found: apt-get install python3-pymodbus (%v)", python, err)
	}
	dir := t.TempDir()
	p := &peer{logPath: filepath.Join(dir, "requests.log")}
	args := []string{"-u", "testdata/server.py", "--log", p.logPath}
	if o.tick > 0 {
		args = append(args, "--tick", fmt.Sprint(o.tick.Seconds()))
	}
	if o.tcp {
		p.tcp = o.tcpAddr
		if p.tcp == "" {
			p.tcp = testpeer.Addr(testpeer.FreePort(t))
		}
		args = append(args, "--tcp", p.tcp)
	}
	if o.rtuTCP {
		p.rtuTCP = testpeer.Addr(testpeer.FreePort(t))
		args = append(args, "--rtutcp", p.rtuTCP)
	}
	if o.lateUnit != 0 {
		args = append(args, "--late-unit", fmt.Sprint(o.lateUnit))
	}
	if o.rtu {
		p.tty = filepath.Join(dir, "tty")
		startSocat(t, p.tty, p.tty+".server")
		args = append(args, "--rtu", p.tty+".server", "--baud", "115200")
	}
	p.cmd = exec.Command(python, args...)
	p.stop = startProcess(t, "modbus peer", "modbus test peer ready", p.cmd)
	for _, a := range []string{p.tcp, p.rtuTCP} {
		if a != "" {
			testpeer.WaitTCP(t, a, 30*time.Second)
		}
	}
	return p
}

// startSocat links a pseudo-terminal pair at a and b.
func startSocat(t testing.TB, a, b string) {
	t.Helper()
	socat := testpeer.LookPath(t, "socat", "socat")
	cmd := exec.Command(socat, "-d", "-d", "pty,rawer,link="+a, "pty,rawer,link="+b)
	startProcess(t, "socat", "starting data transfer loop", cmd)
	waitFor(t, 30*time.Second, "pty links", func() bool {
		_, e1 := os.Stat(a)
		_, e2 := os.Stat(b)
		return e1 == nil && e2 == nil
	})
}

// startProcess runs cmd until the test ends and waits for ready in its
// combined output; the output is in the failure message if it never comes.
// It returns a function that kills the process and waits for it.
func startProcess(t testing.TB, what, ready string, cmd *exec.Cmd) func() {
	t.Helper()
	out := &syncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: cannot start %v: %v", what, cmd.Args, err)
	}
	readyc := make(chan struct{})
	copied := make(chan struct{})
	go func() { // owned by this test: ends when the pipe closes in Cleanup
		defer close(copied)
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(readyc) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }() // owned: ends when the process is killed in Cleanup
	var stopOnce sync.Once
	var waitErr error
	stop := func() {
		stopOnce.Do(func() {
			cmd.Process.Kill()
			waitErr = <-exited
			<-copied
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s output (%v):\n%s", what, waitErr, out.String())
		}
	})
	select {
	case <-readyc:
	case err := <-exited:
		exited <- err
		t.Fatalf("%s exited before it was ready (%v):\n%s", what, err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s:\n%s", what, out.String())
	}
	return stop
}

type syncBuffer = testpeer.Buffer

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testpeer.WaitFor

// arrive makes the peer's late unit answer from now on.
func (p *peer) arrive(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("signal the modbus peer: %v", err)
	}
}

// requests returns the server's request log lines for unit.
func (p *peer) requests(t testing.TB, unit int) []string {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read request log: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, fmt.Sprintf("unit=%d ", unit)) {
			out = append(out, l)
		}
	}
	return out
}

// ch builds a channel from its settings JSON.
func ch(name, settings string) *core.Channel {
	return &core.Channel{Name: name, Settings: json.RawMessage(settings)}
}

func dev(name string, unit int, chans ...*core.Channel) *core.Device {
	return &core.Device{Name: name, Interval: time.Second, Timeout: 10 * time.Second,
		Settings: json.RawMessage(fmt.Sprintf(`{"unit_id":%d}`, unit)), Channels: chans}
}

// newConn builds a connector and closes it when the test ends.
func newConn(t testing.TB, settings string, devs ...*core.Device) *connector {
	t.Helper()
	c, err := New(core.ConnectorConfig{Name: t.Name(), Type: "modbus", Settings: json.RawMessage(settings), Devices: devs})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c.(*connector)
}

// pollOK polls d and fails the test on a whole-device error.
func pollOK(t testing.TB, c *connector, d *core.Device) map[string]core.Reading {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := c.Poll(ctx, d)
	if err != nil {
		t.Fatalf("Poll %s: %v", d.Name, err)
	}
	if len(rs) != len(d.Channels) {
		t.Fatalf("Poll %s: %d readings for %d channels", d.Name, len(rs), len(d.Channels))
	}
	m := map[string]core.Reading{}
	for i, r := range rs {
		if r.Channel != d.Channels[i].Name || r.Device != d.Name {
			t.Fatalf("reading %d is %s/%s, want %s/%s", i, r.Device, r.Channel, d.Name, d.Channels[i].Name)
		}
		m[r.Channel] = r
	}
	return m
}
