package broker

import (
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
	b, stop := startBroker(t, config.Broker{AutosaveInterval: time.Hour}, t.TempDir(), nil)
	ctx := t.Context()
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

	stop()
	if n := testpeer.InotifyFDs(t); n != base {
		t.Fatalf("%d inotify descriptors after Run returned, %d before it ran", n, base)
	}
}
