package ota

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
)

// Phases of an update, kept in the state file so that a restart, a crash
// or a power cut at any moment continues or undoes the update.
const (
	phaseIdle        = ""
	phaseDownloading = "downloading" // parts into <state>/ota/parts; nothing written
	phaseWriting     = "writing"     // root, then boot, then mbr through the update API
	phaseRebooting   = "rebooting"   // boot image patched for a try-once boot, reboot asked
	phaseTrying      = "trying"      // running the new root once, watching health
	phaseRollback    = "rollback"    // the try failed, reboot into the old root asked
)

// state is the agent's state file (<state>/ota/state.json).
type state struct {
	Phase    string `json:"phase,omitempty"`
	Target   string `json:"target,omitempty"`   // the version being installed
	Previous string `json:"previous,omitempty"` // the version it replaces
	BootID   string `json:"boot_id,omitempty"`  // the boot in which Phase began
	Attempts int    `json:"attempts,omitempty"` // writes of Target begun
	Reason   string `json:"reason,omitempty"`   // why a rollback was decided
	Restarts int    `json:"restarts,omitempty"` // agent starts during the try boot after the first
	// Failed holds versions that were tried and rolled back, with why;
	// they are not tried again.
	Failed map[string]string `json:"failed,omitempty"`
	// Last is the outcome of the last update ("confirmed v1.4.0",
	// "rolled back: ...").
	Last string `json:"last,omitempty"`
	// InstalledMBR is the sha256 of the MBR of the last confirmed release:
	// an unchanged MBR is not written again.
	InstalledMBR string `json:"installed_mbr,omitempty"`
	// Baseline is how many reasons the running version's health gave for
	// being degraded when the update began (0: it was ok): the new version
	// may be as degraded as that (a meter that was offline before is
	// offline after), not more.
	Baseline int `json:"baseline,omitempty"`
}

func (a *Agent) statePath() string { return filepath.Join(a.dir, "state.json") }

func (a *Agent) loadState() (state, error) {
	var st state
	b, err := os.ReadFile(a.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("ota: read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("ota: state file %s is damaged (delete it to start afresh; failed versions are forgotten): %w", a.statePath(), err)
	}
	return st, nil
}

// save writes the state file atomically; every phase change goes through
// it before the step it announces.
func (a *Agent) save(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("ota: encode state: %w", err)
	}
	if err := writeFile(a.statePath(), append(b, '\n')); err != nil {
		return fmt.Errorf("ota: save state: %w", err)
	}
	st.Failed = maps.Clone(st.Failed) // the caller's map stays the caller's
	a.mu.Lock()
	a.st = st
	a.mu.Unlock()
	a.tell()
	a.hook("state " + st.Phase)
	return nil
}

// stateCopy is the agent's state, its own to change.
func (a *Agent) stateCopy() state {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.st
	st.Failed = maps.Clone(a.st.Failed)
	return st
}

// pending reads back and verifies the manifest of the update under way.
func (a *Agent) pending() (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(a.dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("ota: pending manifest: %w", err)
	}
	sig, err := os.ReadFile(filepath.Join(a.dir, "manifest.json.sig"))
	if err != nil {
		return nil, fmt.Errorf("ota: pending manifest: %w", err)
	}
	return OpenManifest(a.pub, data, sig)
}
