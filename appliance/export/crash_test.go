package export

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// The crash test re-executes this test binary as a child process that runs
// a Sink and publishes; the parent SIGKILLs it mid-stream and starts it
// again on the same StoreDir and client id.
const childEnv = "OSGATE_EXPORT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain publishes "seq=N" for N in [FROM, TO), printing "P N" after each
// Publish returned, then "DONE", then runs until killed.
func childMain() int {
	from, _ := strconv.Atoi(os.Getenv("CHILD_FROM"))
	to, _ := strconv.Atoi(os.Getenv("CHILD_TO"))
	pause, _ := time.ParseDuration(os.Getenv("CHILD_PAUSE"))
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := New(Options{URL: os.Getenv("CHILD_URL"), ClientID: "osgate-crash", QoS: 1,
		StoreDir: os.Getenv("CHILD_STORE"), RetryMax: 500 * time.Millisecond, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go s.Run(context.Background())
	out := bufio.NewWriterSize(os.Stdout, 0)
	for i := from; i < to; i++ {
		if err := s.Publish(context.Background(), "telemetry/gw/crash", []byte("seq="+strconv.Itoa(i))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintf(os.Stdout, "P %d %d\n", i, s.Queued())
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	fmt.Fprintln(out, "DONE")
	select {}
}

// child is a running child process and what it printed.
type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	mu     sync.Mutex
	seqs   []int // published, in order
	queued int   // Queued() after the last publish
	eof    chan struct{}
}

func startChild(t *testing.T, url, store string, from, to int, pause time.Duration) *child {
	t.Helper()
	c := &child{eof: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_URL="+url, "CHILD_STORE="+store,
		"CHILD_FROM="+strconv.Itoa(from), "CHILD_TO="+strconv.Itoa(to), "CHILD_PAUSE="+pause.String())
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	go func() {
		defer close(c.eof)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "P" {
				n, _ := strconv.Atoi(f[1])
				q, _ := strconv.Atoi(f[2])
				c.mu.Lock()
				c.seqs = append(c.seqs, n)
				c.queued = q
				c.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child stderr:\n%s", c.stderr.String())
		}
	})
	return c
}

func (c *child) published() ([]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.seqs...), c.queued
}

// kill SIGKILLs the child and waits until everything it printed is read.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.eof
	_ = c.cmd.Wait()
}

func keysOf(seqs []int) []string {
	keys := make([]string, len(seqs))
	for i, n := range seqs {
		keys[i] = "seq=" + strconv.Itoa(n)
	}
	return keys
}

// TestSinkProcessKilled: the publishing process is SIGKILLed mid-stream and
// started again on the same store; every message whose Publish returned
// before the kill arrives, whether it was in flight or still queued.
func TestSinkProcessKilled(t *testing.T) {
	b := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	sub := testpeer.Subscribe(t, b.URL(), testpeer.SubscriberOptions{ClientID: "cloud-sub", Filter: "telemetry/#", Key: seqKey})

	t.Run("streaming", func(t *testing.T) {
		// Broker up, the child publishing as fast as it can: messages are in
		// flight in the MQTT client's store and queued in the spool.
		store := t.TempDir()
		c := startChild(t, b.URL(), store, 0, 1_000_000, 0)
		waitFor(t, "the child to publish 3000 messages", 60*time.Second, func() bool {
			s, _ := c.published()
			return len(s) >= 3000
		})
		c.kill()
		seqs, queued := c.published()
		t.Logf("killed after %d published, %d unacknowledged at the last publish", len(seqs), queued)
		if queued == 0 {
			t.Fatal("nothing was in flight or queued at the kill: the test proves nothing")
		}
		c2 := startChild(t, b.URL(), store, 0, 0, 0)
		waitAll(t, sub, keysOf(seqs), 60*time.Second)
		c2.kill()
	})

	t.Run("broker away", func(t *testing.T) {
		// The broker stops while the child publishes; the child is killed
		// with messages in flight (handed to the client before the broker
		// went) and many queued; both come back after the restart.
		store := t.TempDir()
		const base = 2_000_000
		c := startChild(t, b.URL(), store, base, base+1_000_000, 2*time.Millisecond)
		waitFor(t, "the child to publish 300 messages", 60*time.Second, func() bool {
			s, _ := c.published()
			return len(s) >= 300
		})
		b.Stop()
		waitFor(t, "the child to publish 300 more", 60*time.Second, func() bool {
			s, _ := c.published()
			return len(s) >= 600
		})
		c.kill()
		seqs, queued := c.published()
		t.Logf("killed after %d published, %d unacknowledged", len(seqs), queued)
		if queued < 200 {
			t.Fatalf("only %d messages waiting at the kill: the test proves nothing", queued)
		}
		b.Start()
		c2 := startChild(t, b.URL(), store, 0, 0, 0)
		waitAll(t, sub, keysOf(seqs), 60*time.Second)
		c2.kill()
	})
	t.Logf("%d distinct, %d duplicates (QoS 1 allows them)", sub.Distinct(), sub.Duplicates())
}
