package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/osgate/osgate/appliance/health"
)

// needed lists the parts to write: root, boot, and the MBR when it differs
// from the installed one.
func (a *Agent) needed(m *Manifest, st state) []string {
	names := []string{Root, Boot}
	if p, ok := m.Parts[MBR]; ok && p.Sha256 != st.InstalledMBR {
		names = append(names, MBR)
	}
	return names
}

// install downloads and checks every part, then writes them and reboots
// into a try-once boot of the new root. It returns only on failure (or
// when ctx ends): a successful install ends with the reboot.
func (a *Agent) install(ctx context.Context, m *Manifest) error {
	st := a.stateCopy()
	if st.Phase == phaseIdle || st.Target != m.Version {
		st = state{Failed: st.Failed, Last: st.Last, InstalledMBR: st.InstalledMBR, Target: m.Version, Previous: a.running}
		if r := a.health(); r.Status == health.Degraded {
			st.Baseline = len(r.Reasons)
		}
	}
	st.Phase = phaseDownloading
	if err := a.save(st); err != nil {
		return err
	}
	names := a.needed(m, st)
	var total, done int64
	for _, n := range names {
		total += m.Parts[n].FileSize
	}
	for _, n := range names {
		p := m.Parts[n]
		var before int64 = -1
		err := a.download(ctx, p, func(have int64) {
			if before >= 0 && have > before {
				otaDownloadBytes.Add(float64(have - before))
			}
			before = have
			pct := int((done + have) * 100 / total)
			a.setStatus("downloading", fmt.Sprintf("downloading %s %d%%", m.Version, pct), pct)
		})
		if errors.Is(err, errCorrupt) {
			// Nothing was written and there is nothing to resume: back to
			// idle, and the next check fetches the release afresh.
			a.log.Error("ota: refusing a corrupted part; nothing was written", "version", m.Version, "file", p.File, "err", err)
			st.Phase = phaseIdle
			st.Target, st.Previous, st.Attempts = "", "", 0
			if serr := a.save(st); serr != nil {
				return serr
			}
			return err
		}
		if err != nil {
			return err
		}
		done += p.FileSize
	}
	if a.window != nil {
		if d := a.window.until(time.Now()); d > 0 {
			a.setStatus("downloading", fmt.Sprintf("downloaded %s, waiting %s for the maintenance window", m.Version, d.Round(time.Minute)), 100)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
	}
	return a.write(ctx, m, st, names)
}

// write puts the parts through the update API in order (root, the
// inactive partition; boot with its command line patched for a try-once
// boot; the MBR) and reboots.
func (a *Agent) write(ctx context.Context, m *Manifest, st state, names []string) error {
	features, err := a.up.Features(ctx)
	if err != nil {
		return fmt.Errorf("ota: update API: %w", err)
	}
	if !strings.Contains(","+features+",", ",updatehash,") {
		return fmt.Errorf("ota: gokrazy's update API offers %q, not updatehash: writes could not be verified (update gokrazy by hand first)", features)
	}
	cmdline, err := a.up.Cmdline()
	if err != nil {
		return err
	}
	root, err := rootArg(cmdline)
	if err != nil {
		return fmt.Errorf("ota: running kernel: %w", err)
	}
	if st.BootID, err = a.up.BootID(); err != nil {
		return err
	}
	// Only interrupted or failed writes count: a download cut short by
	// the network just resumes.
	st.Attempts++
	if st.Attempts > maxAttempts {
		return a.fail(st, "failed", fmt.Sprintf("gave up after %d interrupted or failed writes", maxAttempts))
	}
	st.Phase = phaseWriting
	if err := a.save(st); err != nil {
		return err
	}
	for _, n := range names {
		a.setStatus("writing", fmt.Sprintf("writing %s %s", m.Version, n), 0)
		if err := a.writePart(ctx, n, m.Parts[n], root); err != nil {
			return err
		}
	}
	st.Phase = phaseRebooting
	if err := a.save(st); err != nil {
		return err
	}
	a.log.Info("ota: written; rebooting to try the new root once", "version", m.Version)
	return a.reboot(ctx, "rebooting", "rebooting into "+m.Version)
}

func (a *Agent) writePart(ctx context.Context, name string, p Part, root string) error {
	f, err := os.Open(a.partPath(p))
	if err != nil {
		return fmt.Errorf("ota: write %s: %w", name, err)
	}
	defer f.Close()
	var patches [][]byte
	if name == Boot {
		orig, err := readImage(f, p, nil)
		if err != nil {
			return fmt.Errorf("ota: write boot: %w", err)
		}
		for _, o := range orig {
			pb, err := tryBootCmdline(o, root)
			if err != nil {
				return fmt.Errorf("ota: write boot: %w", err)
			}
			patches = append(patches, pb)
		}
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { // owned: joined by the deferred function below
		_, err := readImage(f, p, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	joined := false
	defer func() {
		if !joined {
			pr.CloseWithError(errors.New("write abandoned"))
			<-done
		}
	}()
	var src io.Reader = pr
	if name == Boot {
		src = &patchReader{r: pr, extents: p.Cmdline, with: patches}
	}
	h := sha256.New()
	got, err := a.up.Put(ctx, name, io.TeeReader(src, h))
	pr.CloseWithError(errors.New("put ended"))
	joined = true
	if rerr := <-done; rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("ota: write %s: %w", name, err)
	}
	sent := hex.EncodeToString(h.Sum(nil))
	if name != Boot && sent != p.Sha256 {
		return fmt.Errorf("ota: write %s: sent sha256 %s, the manifest says %s", name, sent, p.Sha256)
	}
	if got != sent {
		return fmt.Errorf("ota: write %s: the device wrote sha256 %q, sent %s", name, got, sent)
	}
	return nil
}

// reboot asks for a reboot and waits to be stopped by it.
func (a *Agent) reboot(ctx context.Context, state, text string) error {
	a.setStatus(state, text, 0)
	if err := a.up.Reboot(ctx); err != nil {
		return fmt.Errorf("ota: reboot: %w", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rebootWait):
		return errNoReboot
	}
}
