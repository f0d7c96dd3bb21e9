package appliance

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestLogRing: the ring keeps the newest logLines lines at info and
// above, each at most logLineMax bytes, counts those pushed out, and
// filters by level.
func TestLogRing(t *testing.T) {
	ring := newLogRing()
	log := slog.New(ring.handler())
	log.Debug("never kept")
	for i := range logLines + 10 {
		if i%2 == 0 {
			log.Warn("line", "i", i)
		} else {
			log.Info("line", "i", i)
		}
	}
	log.Error("long", "text", strings.Repeat("x", 3*logLineMax))

	lines, evicted := ring.recent(logLines, slog.LevelInfo)
	if len(lines) != logLines || evicted != 11 {
		t.Fatalf("%d lines, %d evicted; want %d, 11", len(lines), evicted, logLines)
	}
	if !strings.Contains(lines[0], fmt.Sprintf("i=%d", 11)) || !strings.Contains(lines[len(lines)-1], `msg=long`) {
		t.Errorf("not the newest, oldest first: %q ... %q", lines[0], lines[len(lines)-1])
	}
	if n := len(lines[len(lines)-1]); n > logLineMax+len("…") {
		t.Errorf("a line of %d bytes is kept, at most %d and the cut mark", n, logLineMax)
	}
	for _, l := range lines {
		if strings.Contains(l, "never kept") {
			t.Error("a debug line is kept")
		}
	}
	warn, _ := ring.recent(5, slog.LevelWarn)
	if len(warn) != 5 || !strings.Contains(warn[4], "level=ERROR") {
		t.Errorf("warn and above, newest 5: %q", warn)
	}
	for _, l := range warn {
		if strings.Contains(l, "level=INFO") {
			t.Errorf("an info line among warn and above: %q", l)
		}
	}
}
