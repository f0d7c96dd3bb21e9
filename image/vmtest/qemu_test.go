//go:build vmtest

package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vm is one qemu running an appliance image in TCG (no KVM), with the
// guest's gokrazy web UI (80), broker (1883) and RPC service (8080)
// forwarded to free ports on the host's loopback. The guest reaches the
// host's loopback as 10.0.2.2 (qemu user-mode networking).
type vm struct {
	t                 *testing.T
	web, mqtt, rpc    int // host ports
	serial            *lockedBuffer
	cmd               *exec.Cmd
	exited            chan struct{}
	webUser, webPassw string
}

// startVM boots img, the amd64 image; qemu is stopped when the test ends.
func startVM(t *testing.T, img, password string) *vm {
	t.Helper()
	return startQemu(t, "qemu-system-x86_64", "qemu-system-x86", password, func(fwd string) []string {
		// Two vCPUs on one translating thread (thread=single): with a
		// thread each, a guest kernel that patches its own code while the
		// other vCPU runs (static keys, at every boot) was seen to oops
		// on a breakpoint the patch had already removed, right after
		// gokrazy's kexec reboot; real CPUs, and one thread, serialize it.
		return []string{"-M", "q35", "-accel", "tcg,thread=single", "-smp", "2", "-m", "1024",
			"-drive", "file=" + img + ",format=raw,if=virtio",
			// gokrazy's init pets this watchdog; a hung kernel or init resets.
			"-device", "i6300esb", "-watchdog-action", "reset",
			"-device", "e1000,netdev=n0", "-netdev", "user,id=n0," + fwd,
			"-display", "none", "-serial", "stdio", "-monitor", "none"}
	})
}

// startQemu starts qemu (the Debian package debianPackage) with the
// arguments args returns for the port forwards fwd; the guest's web UI
// (80), broker (1883) and RPC service (8080) are forwarded to free
// loopback ports of the host, so several VMs (and several tests) can run
// at once. The serial console is kept, and written to a file when the
// test fails.
func startQemu(t *testing.T, prog, debianPackage, password string, args func(fwd string) []string) *vm {
	t.Helper()
	qemu, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not found (apt-get install %s, or run image/deps.sh): %v", prog, debianPackage, err)
	}
	v := &vm{t: t, web: freePort(t), mqtt: freePort(t), rpc: freePort(t), serial: &lockedBuffer{},
		exited: make(chan struct{}), webUser: "gokrazy", webPassw: password}
	fwd := fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:80,hostfwd=tcp:127.0.0.1:%d-:1883,hostfwd=tcp:127.0.0.1:%d-:8080", v.web, v.mqtt, v.rpc)
	v.cmd = exec.Command(qemu, args(fwd)...)
	v.cmd.Stdout = v.serial
	v.cmd.Stderr = v.serial
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() { v.cmd.Wait(); close(v.exited) }()
	t.Cleanup(func() {
		v.cmd.Process.Kill()
		<-v.exited
		if t.Failed() {
			path := filepath.Join(os.TempDir(), fmt.Sprintf("osgate-vmtest-serial-%d-%s.log", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
			os.WriteFile(path, v.serial.Bytes(), 0o644)
			t.Logf("serial console of the VM: %s", path)
		}
	})
	t.Logf("%s started: gokrazy web UI on 127.0.0.1:%d, broker on :%d, RPC on :%d", prog, v.web, v.mqtt, v.rpc)
	return v
}

// webGet fetches a gokrazy web UI path with basic auth.
func (v *vm) webGet(ctx context.Context, path string) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", v.web, path), nil)
	req.SetBasicAuth(v.webUser, v.webPassw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// webPost posts to a gokrazy API path with basic auth.
func (v *vm) webPost(ctx context.Context, path string) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d%s", v.web, path), nil)
	req.SetBasicAuth(v.webUser, v.webPassw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// serviceLog is what gokrazy kept of a service's stderr (its ring buffer,
// which outlives restarts of the service but not a reboot). The endpoint
// streams; it is read for a few seconds.
func (v *vm) serviceLog(service string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://127.0.0.1:%d/log?path=%s&stream=stderr", v.web, service), nil)
	req.SetBasicAuth(v.webUser, v.webPassw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("(log of %s unavailable: %v)", service, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	io.Copy(&b, resp.Body) // ends with the context's deadline
	return b.String()
}

// alive fails the test when qemu has exited or the guest's kernel has
// panicked (which, without a watchdog to reset the machine, would
// otherwise only show as a deadline passing).
func (v *vm) alive() {
	select {
	case <-v.exited:
		// The reason comes last: CI shows the end of a failure.
		v.t.Fatalf("last serial output:\n%s\nqemu exited (%v) while the test ran: %s",
			tail(v.serial.String(), 3000), v.cmd.ProcessState, exitWhy(v.cmd.ProcessState))
	default:
	}
	if out := v.serial.String(); strings.Contains(out, "Kernel panic - not syncing") {
		v.t.Fatalf("%s\nthe guest's kernel panicked (its console above)", tail(out, 6000))
	}
}

// exitWhy says what an unexpected exit of qemu points to.
func exitWhy(st *os.ProcessState) string {
	ws, ok := st.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		return "killed by SIGKILL from outside the test (the OOM killer, or a process cleaning up qemus); the guest's console shows no fault"
	case ok && ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	case st.ExitCode() == 0:
		return "the guest powered off"
	default:
		return "qemu failed; its own message is at the end of the output above"
	}
}

// eventually polls cond until it returns nil or the deadline passes; the
// deadlines are generous for TCG on a loaded two-core machine.
func (v *vm) eventually(what string, within time.Duration, cond func() error) {
	v.t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < within {
		v.alive()
		if err = cond(); err == nil {
			v.t.Logf("%s: after %s", what, time.Since(start).Round(100*time.Millisecond))
			return
		}
		time.Sleep(time.Second)
	}
	v.t.Fatalf("osgated's log:\n%s\n%s: not within %s: %v", tail(v.serviceLog("/user/osgated"), 6000), what, within, err)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}
