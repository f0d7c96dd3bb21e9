package ota

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// refusal is a release the agent will not install (a bad signature, the
// wrong channel, too old, failed before). It is not retried until the
// manifest changes.
type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

// check polls the channel once and installs a new release. reply (may be
// nil) gets the outcome of the poll as soon as it is known.
func (a *Agent) check(ctx context.Context, reply chan checkResult) error {
	m, err := a.poll(ctx)
	var rf refusal
	switch {
	case errors.As(err, &rf):
		otaChecks.WithLabelValues("refused").Inc()
		a.log.Warn("ota: release refused", "reason", rf.msg)
		a.setStatus("refused", "refused: "+rf.msg, 0)
	case err != nil:
		otaChecks.WithLabelValues("error").Inc()
		a.setStatus("error", "error: "+err.Error(), 0)
	case m == nil:
		otaChecks.WithLabelValues("current").Inc()
	default:
		otaChecks.WithLabelValues("update").Inc()
		a.setStatus("downloading", fmt.Sprintf("downloading %s 0%%", m.Version), 0)
	}
	a.mu.Lock()
	a.status.Checked = time.Now().UTC().Format(time.RFC3339)
	a.mu.Unlock()
	if errors.As(err, &rf) {
		err = nil // a finding, in the status; not a failure to check
	}
	if reply != nil {
		reply <- checkResult{a.Status(), err}
	}
	if err != nil || m == nil {
		return err
	}
	if err := a.install(ctx, m); err != nil {
		a.mu.Lock()
		a.etag = "" // try the same manifest again after the back-off
		a.mu.Unlock()
		if ctx.Err() == nil {
			a.log.Error("ota: update failed", "version", m.Version, "err", err)
			a.setStatus("error", "error: "+err.Error(), 0)
		}
		return err
	}
	return nil
}

// poll fetches and judges the channel's manifest: nil when there is
// nothing to install.
func (a *Agent) poll(ctx context.Context) (*Manifest, error) {
	a.mu.Lock()
	etag, busy := a.etag, a.st.Phase != phaseIdle
	a.mu.Unlock()
	if busy {
		return nil, errors.New("ota: an update is under way")
	}
	data, sig, tag, notModified, err := a.fetchManifest(ctx, etag)
	if err != nil || notModified {
		return nil, err
	}
	a.mu.Lock()
	a.etag = tag
	a.mu.Unlock()
	m, err := OpenManifest(a.pub, data, sig)
	if err != nil {
		return nil, refusal{err.Error()}
	}
	if err := a.judge(m); err != nil {
		return nil, err
	}
	if m.Version == a.running {
		a.setStatus("idle", "idle: "+a.running+" is current", 0)
		return nil, nil
	}
	// The manifest first, then (in install) the state that names it.
	if err := writeFile(filepath.Join(a.dir, "manifest.json"), data); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(a.dir, "manifest.json.sig"), sig); err != nil {
		return nil, err
	}
	return m, nil
}

// judge refuses a verified manifest that is not for this device now.
func (a *Agent) judge(m *Manifest) error {
	a.mu.Lock()
	why, failed := a.st.Failed[m.Version]
	a.mu.Unlock()
	switch {
	case a.channel != "" && m.Channel != a.channel:
		return refusal{fmt.Sprintf("manifest is for channel %q, this device follows %q", m.Channel, a.channel)}
	case m.Version == a.running:
		return nil
	case failed:
		return refusal{fmt.Sprintf("%s failed before (%s): not retried", m.Version, why)}
	}
	if c, ok := compareVersions(m.Version, a.running); ok && c < 0 {
		return refusal{fmt.Sprintf("%s is older than the running %s (publish a higher version to go back)", m.Version, a.running)}
	}
	if m.MinPrevious != "" {
		c, ok := compareVersions(a.running, m.MinPrevious)
		if !ok {
			return refusal{fmt.Sprintf("%s needs at least %s; the running %q is not a release version", m.Version, m.MinPrevious, a.running)}
		}
		if c < 0 {
			return refusal{fmt.Sprintf("%s needs at least %s; running %s (install an intermediate release)", m.Version, m.MinPrevious, a.running)}
		}
	}
	return nil
}
