package ota

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A free device is fed every second until ctx ends; a missing one is left
// alone.
func TestFeedOrphanedWatchdog(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	feedOrphanedWatchdog(ctx, dev, slog.New(slog.DiscardHandler))
	b, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 {
		t.Fatalf("fed %d times in 1.5 s, want 2", len(b))
	}
	for _, c := range b {
		if c == 'V' {
			t.Fatal("wrote the magic close character: that would disarm the watchdog")
		}
	}
	feedOrphanedWatchdog(context.Background(), filepath.Join(t.TempDir(), "none"), slog.New(slog.DiscardHandler)) // returns at once
}
