package appliance

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/osgate/osgate/internal/redact"
)

// The gateway keeps its recent log lines in memory, for gateway.logs, the
// technician's pages and the diagnostics bundle: the lines at info level
// and above, as the text handler writes them, at most logLines of at most
// logLineMax bytes each. Under the supervisor they are kept after its
// redaction (the configurations' secrets are cut out) and survive
// configuration changes; gateway.logs cuts the running configuration's
// secrets out again.
const (
	logLines   = 500
	logLineMax = 2048
)

// logRing is the recent log lines.
type logRing struct {
	mu      sync.Mutex
	lines   [logLines]string
	n, next int
	evicted uint64 // lines pushed out since start
}

func newLogRing() *logRing { return &logRing{} }

// Write takes one line (slog's text handler writes a record at once).
func (l *logRing) Write(p []byte) (int, error) {
	line := redact.Clip(string(bytes.TrimRight(p, "\n")), logLineMax)
	l.mu.Lock()
	if l.n == logLines {
		l.evicted++
	}
	l.lines[l.next] = line
	l.next = (l.next + 1) % logLines
	l.n = min(l.n+1, logLines)
	l.mu.Unlock()
	return len(p), nil
}

// recent returns up to limit of the newest lines at level min or above,
// oldest first, and how many older lines are no longer kept.
func (l *logRing) recent(limit int, min slog.Level) ([]string, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i := 0; i < l.n && len(out) < limit; i++ {
		line := l.lines[(l.next+logLines-1-i)%logLines]
		if lineLevel(line) >= min {
			out = append(out, line)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, l.evicted
}

// lineLevel reads the level of a text handler's line.
func lineLevel(line string) slog.Level {
	_, rest, ok := strings.Cut(line, " level=")
	if !ok {
		return slog.LevelInfo
	}
	word, _, _ := strings.Cut(rest, " ")
	var lv slog.Level
	if lv.UnmarshalText([]byte(word)) != nil {
		return slog.LevelInfo
	}
	return lv
}

// handler is what writes into the ring: slog's text handler at info.
func (l *logRing) handler() slog.Handler {
	return slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo})
}

// teeLogs returns a logger that writes to log's handler and keeps the
// lines of info and above in ring.
func teeLogs(log *slog.Logger, ring *logRing) *slog.Logger {
	return slog.New(tee{log.Handler(), ring.handler()})
}

// tee hands each record to two handlers, each at its own level.
type tee struct{ a, b slog.Handler }

func (t tee) Enabled(ctx context.Context, lv slog.Level) bool {
	return t.a.Enabled(ctx, lv) || t.b.Enabled(ctx, lv)
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.a.Enabled(ctx, r.Level) {
		err = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		t.b.Handle(ctx, r)
	}
	return err
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t tee) WithGroup(name string) slog.Handler {
	return tee{t.a.WithGroup(name), t.b.WithGroup(name)}
}
