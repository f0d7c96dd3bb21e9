package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
	"github.com/osgate/osgate/ota"
)

// RolloutOptions start a release rollout.
type RolloutOptions struct {
	// Release is the directory `osgate release` made; Channel the
	// directory the gateways' agents pull from (ota.json's url, with
	// {cohort}, points into it).
	Release, Channel string
	// Selector chooses the gateways that follow the channel (all: every
	// gateway whose agent pulls a cohort's manifest).
	Selector    string
	Canary      Share
	Step        Share
	MaxFailures Share
	// StepTimeout is how long a gateway of a step has to confirm the
	// release before it counts as failed.
	StepTimeout time.Duration
}

// StartRollout publishes the release's parts into the channel and writes
// a new plan, or, when a rollout of the same release is under way and
// nobody drives it, takes that one up (its own settings stand). Drive
// then advances it.
func StartRollout(o RolloutOptions, out io.Writer) (*Plan, error) {
	if _, err := ParseSelector(o.Selector); err != nil {
		return nil, err
	}
	m, data, sig, err := readRelease(o.Release)
	if err != nil {
		return nil, err
	}
	st := Store{Dir: o.Channel}
	if p, err := st.Load(); err != nil {
		return nil, err
	} else if p != nil && p.Active() {
		if p.Target != m.Version {
			return nil, fmt.Errorf("a rollout of %s is %s in %s: let it finish, or `osgate fleet rollout abort` it first", p.Target, p.State, o.Channel)
		}
		fmt.Fprintf(out, "continuing the rollout of %s (%s, step %d; its settings: --canary %s --step %s --max-failures %s)\n",
			p.Target, p.State, len(p.Steps), p.Canary, p.Step, p.MaxFailures)
		return p, nil
	}
	if err := publishParts(m, o.Release, o.Channel); err != nil {
		return nil, err
	}
	base, err := readManifestFile(o.Channel, channelManifest)
	if err != nil {
		return nil, err
	}
	if base.Version == m.Version {
		return nil, fmt.Errorf("the channel %s already publishes %s in its manifest.json: nothing to roll out", o.Channel, m.Version)
	}
	if bm, err := ota.ParseManifest(base.Manifest); err == nil && bm.Channel != m.Channel {
		return nil, fmt.Errorf("the release is for channel %q, but %s publishes channel %q (its manifest.json): agents that follow %q would refuse it",
			m.Channel, o.Channel, bm.Channel, bm.Channel)
	}
	return st.Update(func(p *Plan) (*Plan, error) {
		if p != nil && p.Active() {
			return nil, fmt.Errorf("a rollout of %s was started in %s meanwhile", p.Target, o.Channel)
		}
		now := time.Now().UTC()
		return &Plan{Kind: KindRelease, Target: m.Version, State: Running, Selector: o.Selector,
			Canary: o.Canary, Step: o.Step, MaxFailures: o.MaxFailures, StepTimeout: Duration(o.StepTimeout),
			Release: ReleaseFiles{Manifest: data, Sig: sig, Baseline: base.Version},
			Created: now, Reason: "started by " + who()}, nil
	})
}

// releaseStager stages a release: a step enables the cohort manifests
// of the channel, in order, until it reaches its share of the gateways
// whose agents pull one.
type releaseStager struct{}

func (releaseStager) takesPart(g Gateway) bool {
	return g.Doc.OTA != nil && g.Doc.OTA.Cohort != nil // its agent pulls a cohort's manifest
}

func (releaseStager) none(p *Plan) error {
	return fmt.Errorf("no online gateway follows the channel (selector %q, and an agent that pulls a cohort's manifest): see `osgate fleet ls`", p.Selector)
}

// choose enables, from the cohorts enabled so far, one more at a time
// until the step's share of the online gateways is reached; every cohort
// and the channel's manifest.json when that is all of them.
func (releaseStager) choose(p *Plan, dir string, online, offline []Gateway, want int) (Step, error) {
	n := len(online)
	byCohort := func(gs []Gateway, below int) (in []string) {
		for _, g := range gs {
			if *g.Doc.OTA.Cohort < below {
				in = append(in, g.ID)
			}
		}
		return in
	}
	cohorts := p.Release.Cohorts
	for cohorts < ota.Cohorts && len(byCohort(online, cohorts)) < want {
		cohorts++
	}
	step := Step{Want: want, Cohorts: cohorts}
	if want >= n || len(byCohort(online, cohorts)) >= n {
		step.Final, step.Cohorts = true, ota.Cohorts
	}
	step.Gateways = byCohort(online, step.Cohorts)
	step.Offline = byCohort(offline, step.Cohorts)
	if err := rememberBefore(&p.Release.Before, dir, releaseFiles(step.Cohorts, step.Final)); err != nil {
		return Step{}, err
	}
	return step, nil
}

func (releaseStager) apply(p *Plan, dir string, s *Step) (string, error) {
	rel := SavedFile{Manifest: p.Release.Manifest, Sig: p.Release.Sig}
	for _, name := range releaseFiles(s.Cohorts, s.Final) {
		if err := writeManifestFile(dir, name, rel); err != nil {
			return "", fmt.Errorf("publish %s: %w", name, err)
		}
	}
	p.Release.Cohorts = max(p.Release.Cohorts, s.Cohorts)
	return fmt.Sprintf("%s published to cohorts 00-%02d%s", p.Target, s.Cohorts-1, finalText(s.Final)), nil
}

func (releaseStager) revert(p *Plan, dir string) error {
	err := revertFiles(p.Release.Before, dir)
	p.Release.Cohorts = 0
	return err
}

func (releaseStager) revertHelp(p *Plan) string {
	return "copy manifest.json of " + orDash(p.Release.Baseline) + " over the cohort files by hand"
}

func (releaseStager) judge(p *Plan, g Gateway) (string, string) { return judgeRelease(p.Target, g) }

func (releaseStager) busy(_ *Plan, g Gateway) bool { return busy(g) }

func (releaseStager) reach(s Step) string {
	return fmt.Sprintf("cohorts 00-%02d%s", s.Cohorts-1, finalText(s.Final))
}

func (releaseStager) back(p *Plan) string {
	return fmt.Sprintf("the manifests are back as they were (%s)", orDash(p.Release.Baseline))
}

func (releaseStager) doneReason(p *Plan) string {
	return fmt.Sprintf("every cohort and the channel's manifest.json publish %s", p.Target)
}

func finalText(final bool) string {
	if final {
		return " and manifest.json"
	}
	return ""
}

// channelManifest is the channel's own manifest: what agents without a
// cohort, and new gateways after a rollout, pull.
const channelManifest = "manifest.json"

// readRelease reads a release directory made by `osgate release`: its
// manifest (parsed, not verified: the gateways verify it with their key;
// the signature file must be there) and the signature.
func readRelease(dir string) (*ota.Manifest, []byte, []byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, channelManifest))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read the release: %w (give the directory `osgate release` made)", err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, channelManifest+".sig"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read the release's signature: %w (sign it with `osgate release`)", err)
	}
	m, err := ota.ParseManifest(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the release in %s: %w", dir, err)
	}
	return m, data, sig, nil
}

// publishParts copies the release's parts into the channel directory,
// checking each against the manifest's hash and size. A part that is not
// in the release directory (reused from a previous release) must already
// be in the channel's. Parts carry their hash in their name, so one that
// is there is the same file.
func publishParts(m *ota.Manifest, releaseDir, channelDir string) error {
	names := make([]string, 0, len(m.Parts))
	for name := range m.Parts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := m.Parts[name]
		dst := filepath.Join(channelDir, p.File)
		if ok, err := fileMatches(dst, p); err != nil {
			return err
		} else if ok {
			continue
		}
		src := filepath.Join(releaseDir, p.File)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("part %s: %s is neither in the release directory nor in the channel's %s", name, p.File, channelDir)
		}
		if err := copyPart(src, dst, p); err != nil {
			return fmt.Errorf("part %s: %w", name, err)
		}
	}
	return nil
}

// fileMatches says whether path holds the part (false when it is not
// there at all).
func fileMatches(path string, p ota.Part) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return n == p.FileSize && hex.EncodeToString(h.Sum(nil)) == p.FileSha256, nil
}

// copyPart copies src to dst through a temporary file, renamed once its
// hash is checked: the server never serves half a part.
func copyPart(src, dst string, p ota.Part) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return fmt.Errorf("copy into the channel directory: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if n != p.FileSize || hex.EncodeToString(h.Sum(nil)) != p.FileSha256 {
		return fmt.Errorf("%s does not match its manifest (size %d, want %d, or another hash): build the release again", src, n, p.FileSize)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// readManifestFile reads a manifest file of the channel and its
// signature as they are now.
func readManifestFile(dir, name string) (SavedFile, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return SavedFile{Absent: true}, nil
	}
	if err != nil {
		return SavedFile{}, err
	}
	sig, err := os.ReadFile(filepath.Join(dir, name+".sig"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return SavedFile{}, err
	}
	f := SavedFile{Manifest: data, Sig: sig, SigAbsent: err != nil}
	if m, err := ota.ParseManifest(data); err == nil {
		f.Version = m.Version
	}
	return f, nil
}

// writeManifestFile replaces a manifest file of the channel: the
// signature first, then the manifest. An agent that reads the old
// manifest with the new signature refuses it and takes the new one at its
// next poll (the manifest changed); the other order could leave it
// refusing the new manifest until the next release.
func writeManifestFile(dir, name string, f SavedFile) error {
	path := filepath.Join(dir, name)
	if f.SigAbsent && !f.Absent {
		if err := os.Remove(path + ".sig"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return writeNewer(path, f.Manifest)
	}
	if f.Absent {
		for _, p := range []string{path, path + ".sig"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return atomicfile.SyncDir(dir)
	}
	if err := writeNewer(path+".sig", f.Sig); err != nil {
		return err
	}
	return writeNewer(path, f.Manifest)
}

// writeNewer replaces a file whole, with a modification time in a later
// second than the one it replaces (newSecond).
func writeNewer(path string, data []byte) error {
	var prev time.Time
	if fi, err := os.Stat(path); err == nil {
		prev = fi.ModTime()
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return err
	}
	return newSecond(path, prev)
}

// newSecond gives a file rewritten within the second of its previous
// version a later modification time: static servers such as nginx make
// the ETag from the time in seconds and the size, and an agent asking
// with the old ETag would otherwise be told the manifest did not change
// (a halt that puts a manifest of the same size back at once).
func newSecond(path string, prev time.Time) error {
	fi, err := os.Stat(path)
	if err != nil || prev.IsZero() || fi.ModTime().Unix() > prev.Unix() {
		return err
	}
	t := time.Unix(prev.Unix()+1, 0)
	return os.Chtimes(path, t, t)
}

// releaseFiles is the names of the files a step writes: cohorts 00 to
// cohorts-1, and with final the channel's own manifest.
func releaseFiles(cohorts int, final bool) []string {
	var names []string
	for c := range cohorts {
		names = append(names, ota.CohortFile(c))
	}
	if final {
		names = append(names, channelManifest)
	}
	return names
}

// rememberBefore saves into *before, for each file of names replaced
// for the first time, its content as it is now (the caller saves the plan
// before the files change).
func rememberBefore(before *map[string]SavedFile, dir string, names []string) error {
	if *before == nil {
		*before = map[string]SavedFile{}
	}
	for _, name := range names {
		if _, ok := (*before)[name]; ok {
			continue
		}
		f, err := readManifestFile(dir, name)
		if err != nil {
			return fmt.Errorf("read %s before replacing it: %w", name, err)
		}
		(*before)[name] = f
	}
	return nil
}

// revertFiles puts back every file of before, as it was.
func revertFiles(before map[string]SavedFile, dir string) error {
	var errs []error
	for _, name := range sortedKeys(before) {
		if err := writeManifestFile(dir, name, before[name]); err != nil {
			errs = append(errs, fmt.Errorf("put back %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// judgeRelease says whether a gateway reached the release (done: it runs
// it and no update is under way), failed (the agent gave it up: rolled
// back, or refused it), or is still on its way.
func judgeRelease(target string, g Gateway) (outcome, why string) {
	o := g.Doc.OTA
	switch {
	case o != nil && slices.Contains(o.Failed, target):
		why = o.Last
		if why == "" {
			why = o.Status
		}
		return outFailed, orDash(why)
	case g.Doc.Version == target && !busy(g) && (g.Online() || o != nil && o.Last == "confirmed "+target):
		// Offline since it confirmed: its last document says so.
		return outDone, ""
	case o != nil && o.State == "refused" && strings.Contains(o.Status, target):
		return outFailed, o.Status
	}
	return outPending, ""
}

// busy says whether an update is under way on a gateway: between its
// download and its confirmation or rollback, it is on no confirmed
// version.
func busy(g Gateway) bool {
	o := g.Doc.OTA
	if o == nil {
		return false
	}
	switch o.State {
	case "downloading", "writing", "rebooting", "trying", "rolling back":
		return true
	}
	return o.Target != ""
}
