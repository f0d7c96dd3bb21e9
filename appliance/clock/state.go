package clock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
)

// StateFile is where the clock keeps, in the state dir, the last time it
// saved and what it knew then.
const StateFile = "clock.json"

// maxStateFile bounds what is read of the state file.
const maxStateFile = 64 << 10

// saved is the state file's content.
type saved struct {
	// Time is the clock's time when it was written: at the next boot the
	// clock is not set earlier than this.
	Time time.Time `json:"time"`
	// BootID is the boot the rest was true in; a restarted osgate in the
	// same boot takes State, Source and LastSync over.
	BootID   string    `json:"boot_id,omitempty"`
	State    State     `json:"state,omitempty"`
	Source   string    `json:"source,omitempty"`
	LastSync time.Time `json:"last_sync,omitzero"`
}

// readState reads the state file; a missing file is no error and gives
// the zero value.
func readState(path string) (saved, error) {
	var s saved
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("clock state %s: %w", path, err)
	}
	if len(b) > maxStateFile {
		return saved{}, fmt.Errorf("clock state %s: %d bytes, more than a clock state can be: ignored", path, len(b))
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return saved{}, fmt.Errorf("clock state %s: %w: ignored (it is written again within a minute)", path, err)
	}
	switch s.State {
	case "", Synced, Restored, Unsynced:
	default:
		s.State = ""
	}
	return s, nil
}

// writeState replaces the state file through a synced temporary file, so
// a power cut leaves the old one or the new one.
func writeState(path string, s saved) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o644)
}
