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
	"path/filepath"
	"slices"
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

// TestSinkSurvivesFlippedSpoolByte: one byte flipped in the middle of the
// first of two spool segments while the broker was away costs the one
// message whose record it is in; every other message reaches the
// subscriber, and the loss is logged and counted.
func TestSinkSurvivesFlippedSpoolByte(t *testing.T) {
	b := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	sub := testpeer.Subscribe(t, b.URL(), testpeer.SubscriberOptions{ClientID: "cloud-sub", Filter: "telemetry/#", Key: seqKey})
	b.Stop()
	store := t.TempDir()
	segments := func() []string {
		var m []string
		for _, ext := range []string{"*.seg", "*.spool"} {
			g, _ := filepath.Glob(filepath.Join(store, "spool", ext))
			m = append(m, g...)
		}
		slices.Sort(m)
		return m
	}
	s, stop := runSink(t, Options{URL: b.URL(), ClientID: "osgate-flip", StoreDir: store, QueueLimit: 1_000_000})
	pad := strings.Repeat(" ", 200)
	n := 0
	ctx := context.Background()
	for len(segments()) < 2 || n%1000 != 0 {
		if err := s.Publish(ctx, "telemetry/gw/flip", []byte("seq="+strconv.Itoa(n)+pad)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	stop()
	first := segments()[0]
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x04
	if err := os.WriteFile(first, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages in %d segments; flipped a bit at offset %d of %s", n, len(segments()), len(data)/2, filepath.Base(first))

	b.Start()
	var logs logBuffer
	s2, err := New(Options{URL: b.URL(), ClientID: "osgate-flip", StoreDir: store, QoS: 1, QueueLimit: 1_000_000, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s2.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	keys := make([]string, n)
	for i := range n {
		keys[i] = "seq=" + strconv.Itoa(i) + pad
	}
	if !sub.WaitDistinct(n-1, 60*time.Second) {
		t.Fatalf("only %d of %d messages arrived after one flipped byte, want all but the one it hit", sub.Distinct(), n)
	}
	time.Sleep(time.Second) // anything more that would come
	miss := sub.WaitKeys(keys, time.Millisecond)
	if len(miss) != 1 {
		t.Fatalf("%d of %d messages missing after one flipped byte, want exactly the one it hit", len(miss), n)
	}
	for _, want := range []string{filepath.Base(first), "lost_messages=1", "damaged_regions=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("the log does not say %q:\n%s", want, logs.String())
		}
	}
	t.Logf("lost only %q; %d duplicates", strings.TrimSpace(miss[0]), sub.Duplicates())
}
