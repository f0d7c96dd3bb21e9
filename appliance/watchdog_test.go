package appliance

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/health"
)

// notifySocket listens where sd_notify writes, as systemd does, and
// collects the datagrams.
type notifySocket struct {
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "200000") // WatchdogSec=200ms
	t.Setenv("WATCHDOG_PID", "")
	s := &notifySocket{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *notifySocket) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if strings.Contains(m, msg) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSystemdPingsOnlyWhileHealthy speaks the sd_notify protocol to a
// socket the test listens on: READY once, WATCHDOG pings while healthy,
// none while the gateway is unhealthy, and again once it recovers.
func TestSystemdPingsOnlyWhileHealthy(t *testing.T) {
	sock := listenNotify(t)
	h := health.New(time.Hour)
	h.Export(true, 0, 100)
	w := newWatchdog(h, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	w.every = time.Hour // the systemd period (100 ms pings) must win
	w.exit = func(int) { t.Error("watchdog exited a live gateway") }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	waitFor(t, "READY=1", func() bool { return sock.count("READY=1") == 1 })
	waitFor(t, "3 pings", func() bool { return sock.count("WATCHDOG=1") >= 3 })

	h.Export(true, 100, 100) // queue full: unhealthy
	time.Sleep(300 * time.Millisecond)
	before := sock.count("WATCHDOG=1")
	time.Sleep(time.Second)
	if n := sock.count("WATCHDOG=1") - before; n != 0 {
		t.Fatalf("%d pings while unhealthy", n)
	}
	h.Export(true, 0, 100)
	waitFor(t, "pings after recovery", func() bool { return sock.count("WATCHDOG=1") > before })
}

// TestWatchdogExitsWhenStuck: a poll that overruns its deadline (a driver
// stuck in I/O) makes the gateway not live, and the watchdog exits.
func TestWatchdogExitsWhenStuck(t *testing.T) {
	h := health.New(time.Hour)
	h.Export(true, 0, 100)
	h.Watch("poll c/d", 50*time.Millisecond) // never beaten, never unwatched
	exited := make(chan int, 1)
	w := newWatchdog(h, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	w.every, w.stuckAfter = 20*time.Millisecond, 100*time.Millisecond
	w.stateDir = t.TempDir()
	w.exit = func(code int) { exited <- code }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	select {
	case code := <-exited:
		if code != exitStuck {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watchdog did not act on a stuck poll")
	}
}
