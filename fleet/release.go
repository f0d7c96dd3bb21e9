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
	f := SavedFile{Manifest: data, Sig: sig}
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
	if f.Absent {
		for _, p := range []string{path, path + ".sig"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return atomicfile.SyncDir(dir)
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{path + ".sig", f.Sig}, {path, f.Manifest}} {
		var prev time.Time
		if fi, err := os.Stat(w.path); err == nil {
			prev = fi.ModTime()
		}
		if err := atomicfile.Write(w.path, w.data, 0o644); err != nil {
			return err
		}
		if err := newSecond(w.path, prev); err != nil {
			return err
		}
	}
	return nil
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

// applyRelease writes a step's files: first, for each file it replaces
// for the first time, the old content into the plan (saved before the
// files change, by the caller), then the release.
func rememberBefore(p *Plan, dir string, names []string) error {
	if p.Release.Before == nil {
		p.Release.Before = map[string]SavedFile{}
	}
	for _, name := range names {
		if _, ok := p.Release.Before[name]; ok {
			continue
		}
		f, err := readManifestFile(dir, name)
		if err != nil {
			return fmt.Errorf("read %s before replacing it: %w", name, err)
		}
		p.Release.Before[name] = f
	}
	return nil
}

func applyRelease(p *Plan, dir string, s *Step) error {
	rel := SavedFile{Manifest: p.Release.Manifest, Sig: p.Release.Sig}
	for _, name := range releaseFiles(s.Cohorts, s.Final) {
		if err := writeManifestFile(dir, name, rel); err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
	}
	p.Release.Cohorts = max(p.Release.Cohorts, s.Cohorts)
	return nil
}

// revertRelease puts back every file the rollout replaced, as it was.
func revertRelease(p *Plan, dir string) error {
	names := make([]string, 0, len(p.Release.Before))
	for name := range p.Release.Before {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if err := writeManifestFile(dir, name, p.Release.Before[name]); err != nil {
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
