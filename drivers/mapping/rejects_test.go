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
	r := NewRejects("rj-test", slog.New(slog.NewTextHandler(&buf, nil)))
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
	for i := range maxLogged + 10 {
		r.Reject(fmt.Sprintf("id/%d", i), ReasonUnmatched, nil)
	}
	lines := strings.Count(buf.String(), "\n")
	if lines != maxLogged+1 || !strings.Contains(buf.String(), "too many topics") {
		t.Errorf("%d log lines after %d topics, want %d and one saying it stops", lines, maxLogged+13, maxLogged+1)
	}
	if len(r.logged) > maxLogged {
		t.Errorf("remembers %d topics, bound is %d", len(r.logged), maxLogged)
	}
}
