package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// ChronyExtracted is where scripts/install-deps.sh unpacks Debian's chrony
// package for the tests (dpkg -x, not installed: installing it would
// replace the machine's own time service, systemd-timesyncd).
const ChronyExtracted = "/opt/osgate-test/chrony"

// Chrony is a chronyd serving NTP on a loopback UDP port, owned by one
// test. It never touches the machine's clock (-x): it serves the system
// time as a stratum 8 server ("local"), as a plant's own NTP server would.
type Chrony struct {
	t    testing.TB
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan error
}

// StartChrony starts chronyd on a free loopback UDP port and waits (up to
// 30 s) until it answers an NTP request. It is stopped when the test ends.
func StartChrony(t testing.TB) *Chrony {
	t.Helper()
	bin := chronydPath(t)
	c := &Chrony{t: t, dir: t.TempDir(), done: make(chan error, 1)}
	c.addr = Addr(freeUDPPort(t))
	_, port, _ := net.SplitHostPort(c.addr)
	conf := fmt.Sprintf(`port %s
bindaddress 127.0.0.1
cmdport 0
bindcmdaddress /
allow 127.0.0.1
local stratum 8
pidfile %[2]s/chronyd.pid
driftfile %[2]s/drift
`, port, c.dir)
	confPath := filepath.Join(c.dir, "chrony.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// -x: never set the clock; -U -u: run as the test's own user.
	c.cmd = exec.Command(bin, "-d", "-x", "-U", "-u", u.Username, "-f", confPath)
	log := &Buffer{}
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("testpeer: start chronyd: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(c.stop)
	// Ready when it answers steadily: about one start in fifty, chronyd
	// answered a first request and then refused the next ones for up to
	// 15 ms, which a test's first query met.
	deadline := time.Now().Add(30 * time.Second)
	for steady := 0; steady < 5; {
		if ntpAnswers(c.addr) {
			steady++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		steady = 0
		select {
		case err := <-c.done:
			c.cmd = nil
			t.Fatalf("testpeer: chronyd exited at start: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: chronyd does not answer on %s after 30 s\n%s", c.addr, log.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return c
}

// Addr is host:port of the NTP server.
func (c *Chrony) Addr() string { return c.addr }

func (c *Chrony) stop() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// chronydPath finds chronyd: installed, or unpacked by install-deps.sh.
func chronydPath(t testing.TB) string {
	if p, err := exec.LookPath("chronyd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/chronyd", filepath.Join(ChronyExtracted, "usr/sbin/chronyd")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("testpeer: chronyd not found: scripts/install-deps.sh test unpacks Debian's chrony into %s (.ci/run does)", ChronyExtracted)
	return ""
}

// ntpAnswers reports whether an NTP server answers at addr within 200 ms.
func ntpAnswers(addr string) bool {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	req := make([]byte, 48)
	req[0] = 4<<3 | 3 // version 4, client
	req[47] = 1
	conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write(req); err != nil {
		return false
	}
	buf := make([]byte, 128)
	n, err := conn.Read(buf)
	return err == nil && n >= 48
}

// freeUDPPort is a UDP port on the loopback that nothing uses now.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
