// Package testpeer starts the real programs osgate's tests talk to
// (Mosquitto, nginx, pymodbus, socat, ...), each with a config the test
// writes, on free loopback ports. A peer that cannot start fails the test
// loudly: nothing here skips.
package testpeer

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpeer: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts connections, or fails the test.
func WaitTCP(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: %s not accepting connections after %s: %v", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LookPath finds a program the test needs, or fails the test naming the
// Debian package that provides it.
func LookPath(t testing.TB, prog, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
			if p, err2 := exec.LookPath(dir + "/" + prog); err2 == nil {
				return p
			}
		}
		t.Fatalf("testpeer: %s not found (apt-get install %s; .ci/run installs it): %v", prog, debianPackage, err)
	}
	return p
}

// Addr formats a loopback address.
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
