package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRejectsLogOncePerTopic: every rejected message is counted, but each
// topic is logged once per reason, and the memory of logged topics is
// bounded.
func TestRejectsLogOncePerTopic(t *testing.T) {
	var buf lockedBuf
	r := NewRejects("rj-test", slog.New(slog.NewTextHandler(&buf, nil)), nil)
	before := Rejected("rj-test", ReasonPayload)
	for range 5 {
		r.Reject("a/b", ReasonPayload, errors.New("not JSON"))
		r.Reject("a/c", ReasonPayload, errors.New("not JSON"))
		r.Reject("a/b", ReasonEmpty, errors.New("empty"))
	}
	if got := Rejected("rj-test", ReasonPayload) - before; got != 10 {
		t.Errorf("counted %v payload rejects, want 10", got)
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Errorf("%d log lines, want 3:\n%s", n, buf.String())
	}
	// A flood of distinct topics: every one counted, a few lines a
	// minute logged, the memory of topics bounded.
	for i := range maxLogged + 10 {
		r.Reject(fmt.Sprintf("id/%d", i), ReasonUnmatched, nil)
	}
	if got := Rejected("rj-test", ReasonUnmatched); got < maxLogged+10 {
		t.Errorf("counted %v unmatched, want %d", got, maxLogged+10)
	}
	lines := strings.Count(buf.String(), "\n")
	if lines != logBurst {
		t.Errorf("%d log lines after %d topics, want %d (the rate limit)", lines, maxLogged+13, logBurst)
	}
	if n := r.logged.Len(); n > maxLogged {
		t.Errorf("remembers %d topics, bound is %d", n, maxLogged)
	}
}

// TestRejectsClipTopic: a long topic is logged clipped.
func TestRejectsClipTopic(t *testing.T) {
	var buf lockedBuf
	r := NewRejects("rj-clip", slog.New(slog.NewTextHandler(&buf, nil)), nil)
	r.Reject("a/"+strings.Repeat("x", 60<<10), ReasonUnmatched, errors.New(strings.Repeat("y", 60<<10)))
	if n := len(buf.String()); n == 0 || n > 2048 {
		t.Errorf("log line of %d bytes for a 60 KB topic:\n%.300s", n, buf.String())
	}
}
