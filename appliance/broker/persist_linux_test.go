package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestPersistWaitsForNotice: Persist looks at mosquitto.db when the kernel
// says Mosquitto renamed a save onto it, not on a quick timer: waiting a
// second for an autosave that does not come takes a look at the start and
// one at the end (looking every 10 to 160 ms took ten), and a save asked
// for is seen at once. One inotify watch serves every call while Run runs,
// and is gone when Run returns.
func TestPersistWaitsForNotice(t *testing.T) {
	base := testpeer.InotifyFDs(t)
	cfg := config.Broker{Listen: testpeer.Addr(testpeer.FreePort(t)), AutosaveInterval: time.Hour,
		Binary: testpeer.LookPath(t, "mosquitto", "mosquitto")}
	b := New(cfg, "gw-test", t.TempDir(), testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("broker did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("broker not ready within 60s")
	}
	if n := testpeer.InotifyFDs(t); n != base+1 {
		t.Fatalf("%d inotify descriptors while the broker runs, %d before: want one more", n, base)
	}

	for range 3 {
		b.looks.Store(0)
		began := time.Now()
		_, err := b.Persist(ctx, b.Generation(), "x", false)
		if !errors.Is(err, export.ErrNotSaved) {
			t.Fatalf("Persist without a save: %v, want ErrNotSaved", err)
		}
		if took := time.Since(began); took < ownSaveWait || took > ownSaveWait+2*time.Second {
			t.Fatalf("Persist without a save returned after %s, want about %s", took, ownSaveWait)
		}
		if n := b.looks.Load(); n > 3 {
			t.Fatalf("Persist looked at mosquitto.db %d times while it waited a second for a save that did not come, want at most 3", n)
		}
	}
	for i := range 20 {
		b.looks.Store(0)
		saved, err := b.Persist(ctx, b.Generation(), "x", true)
		if err != nil || saved.DB == 0 {
			t.Fatalf("Persist %d asking for a save: %+v, %v", i, saved, err)
		}
		if n := b.looks.Load(); n > 4 {
			t.Fatalf("Persist looked at mosquitto.db %d times for a save asked for, want at most 4", n)
		}
	}
	if n := testpeer.InotifyFDs(t); n != base+1 {
		t.Fatalf("%d inotify descriptors after 23 calls of Persist, %d before the broker ran: want one more", n, base)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of its context ending")
	}
	if n := testpeer.InotifyFDs(t); n != base {
		t.Fatalf("%d inotify descriptors after Run returned, %d before it ran", n, base)
	}
}
