package zwave

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// The zwave-js mock controller (npm zwave-js, pinned in
// testdata/mock/package.json) is the real peer of these tests; socat gives
// it a pseudo-terminal that the driver opens like a USB stick.

const mockInstall = "npm ci --prefix drivers/zwave/testdata/mock"

// mockPeer is a running mock controller.
type mockPeer struct {
	addr string // its TCP address
	log  *syncBuffer
}

type syncBuffer = testpeer.Buffer

// startMock starts the mock controller with env (e.g. "ZW_PENDING_NODE=6").
func startMock(t *testing.T, env ...string) *mockPeer {
	t.Helper()
	dir, err := filepath.Abs("testdata/mock")
	if err != nil {
		t.Fatal(err)
	}
	server := filepath.Join(dir, "node_modules/zwave-js/bin/mock-server.cjs")
	if _, err := os.Stat(server); err != nil {
		t.Fatalf("zwave-js mock server missing (%v): install it from the repository root with: %s", err, mockInstall)
	}
	node := testpeer.LookPath(t, "node", "nodejs (Node.js >= 20, e.g. from NodeSource)")
	port := testpeer.FreePort(t)
	m := &mockPeer{addr: testpeer.Addr(port), log: &syncBuffer{}}
	cmd := exec.Command(node, "-r", filepath.Join(dir, "preload.cjs"), server,
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-c", filepath.Join(dir, "mock-config.cjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start zwave-js mock server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mock controller log:\n%s", m.log.String())
		}
	})
	waitFor(t, 60*time.Second, "mock server listening", func() bool {
		select {
		case <-exited:
			t.Fatalf("zwave-js mock server exited:\n%s", m.log.String())
		default:
		}
		return bytes.Contains([]byte(m.log.String()), []byte("Server listening"))
	})
	return m
}

// startPTY bridges a new pseudo-terminal to addr with socat and returns the
// terminal's path.
func startPTY(t *testing.T, addr string) string {
	t.Helper()
	return startPTYAt(t, addr, filepath.Join(t.TempDir(), "ttyZW"))
}

// startPTYAt is startPTY with the terminal's path given.
func startPTYAt(t *testing.T, addr, tty string) string {
	t.Helper()
	socat := testpeer.LookPath(t, "socat", "socat")
	var log syncBuffer
	cmd := exec.Command(socat, "pty,rawer,link="+tty, "tcp:"+addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start socat: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitFor(t, 20*time.Second, "socat pty "+tty, func() bool {
		select {
		case <-exited:
			t.Fatalf("socat exited: %s", log.String())
		default:
		}
		_, err := os.Stat(tty)
		return err == nil
	})
	return tty
}

// waitFor polls cond until it holds or d passes.
var waitFor = testpeer.WaitFor

// testCtx is a generous deadline for one step on a loaded machine.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
