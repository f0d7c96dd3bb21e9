package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// releaseExePages gives back the binary's pages after the first delay,
// splitting its mappings into pages the first time, and then again every
// period, and says so at debug level with what was resident before and
// after; it stops with its context.
func TestReleaseExePages(t *testing.T) {
	rec := &records{}
	log := slog.New(rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		releaseExePages(ctx, log, 10*time.Millisecond, 50*time.Millisecond)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for rec.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("releaseExePages did not stop with its context")
	}
	rs := rec.all()
	if len(rs) < 2 {
		t.Fatalf("%d releases logged in 10 s, want 2 (after 10 ms, then every 50 ms): %v", len(rs), rs)
	}
	for i, r := range rs {
		// The first release splits the mappings, the later ones only
		// unmap.
		if split, ok := r.flags["split"]; !ok || split != (i == 0) {
			t.Fatalf("release %d: split %v (logged: %t), want %t; %v", i+1, split, ok, i == 0, rs)
		}
		if r.msg != "binary pages given back" {
			t.Fatalf("logged %q (%v), want the pages given back", r.msg, r.attrs)
		}
		before, after := r.attrs["resident_before_bytes"], r.attrs["resident_after_bytes"]
		if before <= 0 || after >= before {
			t.Fatalf("resident before %d, after %d: nothing given back", before, after)
		}
	}
}

type record struct {
	msg   string
	attrs map[string]int64
	flags map[string]bool
}

// records is a slog handler that keeps what is logged.
type records struct {
	mu sync.Mutex
	rs []record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	rec := record{msg: r.Message, attrs: map[string]int64{}, flags: map[string]bool{}}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindInt64:
			rec.attrs[a.Key] = a.Value.Int64()
		case slog.KindBool:
			rec.flags[a.Key] = a.Value.Bool()
		default:
			rec.msg += " " + a.String()
		}
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rs = append(h.rs, rec)
	return nil
}
func (h *records) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.rs) }
func (h *records) all() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.rs...)
}
