package mbus

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// The tests' M-Bus line: a socat pseudo-terminal pair with testdata/
// mbus_slave.py (stdlib python) answering on one end as one or more
// meters. Pseudo-terminals cannot do parity, so the tests run 8N1.

const (
	python = "/usr/bin/python3"
	socat  = "/usr/bin/socat"
)

// syncBuffer collects a peer's output for the test to read while it runs.
type syncBuffer = testpeer.Buffer

// slavePeer is a running slave: Path is the master's end of the line.
type slavePeer struct {
	Path string
	Log  *syncBuffer
}

// logWhen returns the slave's log once ok holds for it (true), or as it
// is after 5 s (false). The slave writes each line before it answers, but
// the line reaches Log through a pipe and a copying goroutine, so it may
// come after the answer did.
func (p *slavePeer) logWhen(ok func(log string) bool) (string, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := p.Log.String()
		if ok(log) {
			return log, true
		}
		if time.Now().After(deadline) {
			return log, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or within passes.
var waitFor = testpeer.WaitFor

func startProcess(t *testing.T, name string, out *syncBuffer, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
}

// startSlave starts socat and the slave with the given mbus_slave.py
// arguments (e.g. "--slave", "5=testdata/frames/abb_f95.hex"). It fails the
// test if either does not come up.
func startSlave(t *testing.T, args ...string) *slavePeer {
	t.Helper()
	testpeer.LookPath(t, socat, "socat")
	testpeer.LookPath(t, python, "python3")
	script, err := filepath.Abs("testdata/mbus_slave.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	master, slave := filepath.Join(dir, "ttyMBUS0"), filepath.Join(dir, "ttyMBUS0.slave")
	socatLog := &syncBuffer{}
	startProcess(t, "socat", socatLog, socat, "pty,rawer,link="+master, "pty,rawer,link="+slave)
	waitFor(t, 15*time.Second, "socat's pseudo-terminals", func() bool {
		_, e1 := os.Stat(master)
		_, e2 := os.Stat(slave)
		return e1 == nil && e2 == nil
	})
	log := &syncBuffer{}
	startProcess(t, "mbus_slave.py", log, python, append([]string{"-u", script, slave}, args...)...)
	waitFor(t, 20*time.Second, "mbus_slave.py to listen (log: "+log.String()+")", func() bool {
		return strings.Contains(log.String(), "listening")
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("slave log:\n%s\nsocat log:\n%s", log.String(), socatLog.String())
		}
	})
	return &slavePeer{Path: master, Log: log}
}

// testBus is a bus on the peer's line, 8N1, with timeouts generous enough
// for a loaded machine.
func testBus(t *testing.T, p *slavePeer) *Bus {
	t.Helper()
	b := NewBus(PortConfig{Path: p.Path, Baud: 9600, Parity: "none", Timeout: 1500 * time.Millisecond}, nil)
	t.Cleanup(func() { b.Close() })
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// writeFrame writes a telegram built by the test as a hex file for the
// slave.
func writeFrame(t *testing.T, name string, frame []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(hexBytes(frame)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
