package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
)

// Plan is a staged rollout of a release or a configuration as it is kept
// in the directory of the files it changes (PlanFile next to a channel's
// manifests, ConfigPlanFile next to the gateways' documents): whoever runs
// `osgate fleet rollout` or `osgate fleet config` on the same directory
// sees the same rollout, and a stopped command continues it.
type Plan struct {
	// Kind is "release" or "config".
	Kind string `json:"kind"`
	// Target is the release's version, or "config" and the pushed
	// document's version.
	Target string `json:"target"`
	// State is running, paused, halted, aborted or done.
	State string `json:"state"`
	// Reason says why it halted, or who paused, resumed or aborted it.
	Reason string `json:"reason,omitempty"`
	// Selector chooses the gateways that follow the channel.
	Selector    string   `json:"selector"`
	Canary      Share    `json:"canary"`
	Step        Share    `json:"step"`
	MaxFailures Share    `json:"max_failures"`
	StepTimeout Duration `json:"step_timeout"`
	// Gateways is how many online gateways took part when the last step
	// began: the denominator of the shares.
	Gateways int    `json:"gateways"`
	Steps    []Step `json:"steps"`
	// Release is what the rollout writes and what it puts back.
	Release ReleaseFiles `json:"release"`
	// Config is what a configuration's push writes and puts back.
	Config  *ConfigFiles `json:"config,omitempty"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	// Rev counts the writes of the file.
	Rev int `json:"rev"`
	// Driver is the command advancing the rollout, and when it last said
	// it still does.
	Driver *Driver `json:"driver,omitempty"`
}

// ReleaseFiles are the manifests a release rollout writes, and the files
// it replaced (to put back on a halt or an abort).
type ReleaseFiles struct {
	// Manifest and Sig are the release's manifest.json and its signature,
	// byte for byte.
	Manifest []byte `json:"manifest"`
	Sig      []byte `json:"sig"`
	// Baseline is the version of the channel's manifest.json when the
	// rollout began ("" when there was none).
	Baseline string `json:"baseline,omitempty"`
	// Cohorts: cohort files 00 to Cohorts-1 name the release.
	Cohorts int `json:"cohorts"`
	// Before holds each file the rollout replaced, by name, as it was.
	Before map[string]SavedFile `json:"before,omitempty"`
}

// SavedFile is a manifest (or a gateway's document) and its signature as
// they were; Absent: there was none; SigAbsent: it had no signature file.
type SavedFile struct {
	Absent    bool   `json:"absent,omitempty"`
	Manifest  []byte `json:"manifest,omitempty"`
	Sig       []byte `json:"sig,omitempty"`
	SigAbsent bool   `json:"sig_absent,omitempty"`
	Version   string `json:"version,omitempty"`
}

// Step is one stage of a rollout.
type Step struct {
	// Want is how many of Plan.Gateways the steps so far are to reach.
	Want int `json:"want"`
	// Cohorts: cohort files 00 to Cohorts-1 name the release.
	Cohorts int `json:"cohorts"`
	// Final: every cohort and the channel's own manifest.json name the
	// release.
	Final bool `json:"final,omitempty"`
	// Applied: the step's files are written.
	Applied bool `json:"applied,omitempty"`
	// Gateways are judged in this step; Offline were offline when it
	// began and are not judged.
	Gateways []string `json:"gateways"`
	Offline  []string `json:"offline,omitempty"`
	// Done are on the target and confirmed; Failed did not get there, with
	// why.
	Done    []string          `json:"done,omitempty"`
	Failed  map[string]string `json:"failed,omitempty"`
	Started time.Time         `json:"started"`
	Ended   time.Time         `json:"ended,omitzero"`
	// Outcome is passed, halted or aborted once the step ended.
	Outcome string `json:"outcome,omitempty"`
}

// Driver names the process that advances a rollout.
type Driver struct {
	Host string    `json:"host"`
	PID  int       `json:"pid"`
	Beat time.Time `json:"beat"`
}

// alive says whether the driver said it was alive within driverStale
// and, on this host, whether its process still runs (a command restarted
// at once need not wait for driverStale).
func (d *Driver) alive(now time.Time) bool {
	if d == nil || now.Sub(d.Beat) >= driverStale {
		return false
	}
	if host, _ := os.Hostname(); host == d.Host && d.PID > 0 {
		return syscall.Kill(d.PID, 0) == nil || errors.Is(syscall.Kill(d.PID, 0), syscall.EPERM)
	}
	return true
}

// driverBeat is how often a driver says it is alive; one silent for
// driverStale is gone, and another command may take over.
const (
	driverBeat  = 5 * time.Second
	driverStale = 30 * time.Second
)

// Plan states.
const (
	Running = "running"
	Paused  = "paused"
	Halted  = "halted"
	Aborted = "aborted"
	Done    = "done"
)

// Active says whether the plan may still change the channel.
func (p *Plan) Active() bool { return p.State == Running || p.State == Paused }

// Duration is a time.Duration written as text ("30m0s").
type Duration time.Duration

// MarshalJSON writes "30m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// PlanFile is the rollout state's file in a channel's directory; the lock
// file next to it serializes its changes. (ConfigPlanFile is a
// configuration's.)
const (
	PlanFile = "rollout.json"
	lockFile = ".rollout.lock"
)

// maxPlan bounds a plan file read (the saved manifests of 100 cohorts
// are well below it).
const maxPlan = 16 << 20

// Store is the rollout state of one directory: File in Dir (PlanFile
// when empty), with the lock file "."+File's name+".lock" next to it.
type Store struct{ Dir, File string }

func (s Store) path() string { return filepath.Join(s.Dir, cmpOr(s.File, PlanFile)) }

func (s Store) lockPath() string {
	if s.File == "" {
		return filepath.Join(s.Dir, lockFile)
	}
	return filepath.Join(s.Dir, "."+strings.TrimSuffix(s.File, filepath.Ext(s.File))+".lock")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Load reads the plan; nil without one. Writes replace the file whole,
// so a read without the lock sees one complete version.
func (s Store) Load() (*Plan, error) {
	f, err := os.Open(s.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the rollout state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPlan+1))
	if err != nil {
		return nil, fmt.Errorf("read the rollout state: %w", err)
	}
	if len(b) > maxPlan {
		return nil, fmt.Errorf("rollout state %s is larger than %d bytes: move it aside to start afresh", s.path(), maxPlan)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("rollout state %s is damaged (%w): move it aside to start afresh", s.path(), err)
	}
	return &p, nil
}

// Update runs fn on the plan (nil when there is none) with the channel
// locked against every other `osgate fleet rollout` on the same
// directory, and saves what fn returns (nothing when it returns nil).
// Everything fn writes into the channel happens under the same lock, so
// a pause or an abort never interleaves with a step being published.
func (s Store) Update(fn func(p *Plan) (*Plan, error)) (*Plan, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := s.Load()
	if err != nil {
		return nil, err
	}
	q, err := fn(p)
	if err != nil || q == nil {
		return q, err
	}
	if err := s.save(q); err != nil {
		return nil, err
	}
	return q, nil
}

func (s Store) save(p *Plan) error {
	p.Updated = time.Now().UTC()
	p.Rev++
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if len(b) >= maxPlan {
		// Refused before the files it would put back change: the step is
		// not published.
		return fmt.Errorf("the rollout state would be larger than %d MiB (it keeps every file the rollout replaces, to put it back): roll out to fewer gateways at a time (-gateways)", maxPlan>>20)
	}
	perm := os.FileMode(0o644)
	if p.Kind == KindConfig {
		perm = 0o640 // the documents it keeps may hold the gateways' secrets
	}
	if err := atomicfile.Write(s.path(), append(b, '\n'), perm); err != nil {
		return fmt.Errorf("save the rollout state: %w", err)
	}
	return nil
}

// lock takes the channel's lock file (flock: on a local file system, or
// one that passes it on, such as NFSv4).
func (s Store) lock() (func(), error) {
	f, err := os.OpenFile(s.lockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the channel directory %s: %w", s.Dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
