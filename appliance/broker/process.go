package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one run of the mosquitto binary.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when it exited; err is set then
	err     error
	tail    *tailBuffer
	running chan struct{} // closed when it logged that it runs
}

// runningLine is what Mosquitto logs once it has set up its signal
// handlers (after it opened its listeners): before that, SIGUSR1 would
// kill it.
const runningLine = " running"

// findBinary resolves the mosquitto executable: name as given if it has a
// slash, else on PATH, else in the sbin directories Debian installs it to.
func findBinary(name string) (string, error) {
	if name == "" {
		name = "mosquitto"
	}
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("broker: binary %s: %w", name, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("broker: %s not found on PATH or in /usr/sbin (apt-get install mosquitto, or set broker.binary)", name)
}

// startProcess starts mosquitto with conf; its output goes to log at debug
// level and into a tail kept for when it dies.
func startProcess(bin, conf string, log *slog.Logger) (*process, error) {
	cmd := exec.Command(bin, "-c", conf)
	setDeathSignal(cmd)
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("broker: pipe: %w", err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("broker: start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), tail: &tailBuffer{max: 8 << 10}, running: make(chan struct{})}
	var copied sync.WaitGroup
	copied.Go(func() { p.copyLog(out, log) })
	go func() {
		copied.Wait() // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) copyLog(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	running := false
	for sc.Scan() {
		line := sc.Text()
		if !running && strings.Contains(line, "mosquitto version") && strings.HasSuffix(line, runningLine) {
			running = true
			close(p.running)
		}
		p.tail.add(line)
		log.Log(context.Background(), lineLevel(line), "mosquitto: "+line)
	}
	_, _ = io.Copy(io.Discard, r)
}

// lineLevel picks the log level of a line of Mosquitto's output: errors
// and warnings, and the bridge's comings and goings (what an operator
// looks for), stand out; client chatter is debug.
func lineLevel(line string) slog.Level {
	switch {
	case strings.Contains(line, "should not be run as root"):
		return slog.LevelDebug // on purpose: see Conf
	case strings.HasPrefix(line, "Warning: ACL pattern"):
		return slog.LevelDebug // patterns for every client, on purpose: see ACL
	case strings.HasPrefix(line, "Error"):
		return slog.LevelError
	case strings.HasPrefix(line, "Warning"):
		return slog.LevelWarn
	case strings.Contains(line, "bridge") || strings.Contains(line, "Bridge"):
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// stop sends SIGTERM (Mosquitto saves its persistence) and waits; after
// grace it sends SIGKILL.
func (p *process) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitListening waits until addr accepts connections and Mosquitto says
// it runs (it can be signalled then), the process exits, or ctx ends.
func (p *process) waitListening(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if c, err := dialer.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			select {
			case <-p.running:
				return nil
			case <-p.done:
				return fmt.Errorf("broker: mosquitto exited at start (%v): %s", p.err, p.tail.String())
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(deadline)):
				return errors.New("broker: mosquitto listens on " + addr + " but did not log that it runs within " + within.String())
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("broker: mosquitto exited at start (%v): %s", p.err, p.tail.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("broker: mosquitto not listening on " + addr + " after " + within.String())
		}
	}
}

// tailBuffer keeps the last lines of output, up to max bytes.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	size  int
	lines []string
}

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	t.size += len(line) + 1
	for t.size > t.max && len(t.lines) > 1 {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
