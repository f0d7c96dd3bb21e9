package source

import (
	"slices"
	"time"
)

// deliver makes u the running document. The last error stays while the
// document is a fallback (it says why).
func (s *Source[T]) deliver(u Update[T], etag string) Update[T] {
	s.mu.Lock()
	if s.running.version != u.Version {
		s.previous = s.running
	}
	s.running = runningDoc{version: u.Version, origin: u.Origin, etag: etag}
	if u.Origin == Remote || s.fetch == nil {
		// The errors that made the source fall back no longer hold.
		s.st.LastError, s.st.LastErrorAt = "", time.Time{}
	}
	s.mu.Unlock()
	// No OnChange: Next returns u, and the status names it as running
	// before the caller runs it; the caller says when it does.
	s.log.Info("config: new document", "source", u.Origin, "version", short(u.Version), "etag", etag)
	return u
}

// confirm records that the fleet server still serves the running document.
func (s *Source[T]) confirm(etag string) {
	s.mu.Lock()
	s.running.origin, s.running.etag = Remote, etag
	s.st.LastError, s.st.LastErrorAt = "", time.Time{}
	s.mu.Unlock()
	s.tell()
}

// record accounts for one pull.
func (s *Source[T]) record(outcome string, err error) {
	configFetches.WithLabelValues(outcome).Inc()
	s.mu.Lock()
	s.st.LastFetch, s.st.LastOutcome = time.Now().UTC(), outcome
	s.mu.Unlock()
	if outcome == "error" {
		s.failures++
	} else {
		s.failures = 0
	}
	if err != nil {
		s.fail(err)
	}
}

// fail logs err and keeps it as the status's last error.
func (s *Source[T]) fail(err error) {
	s.log.Warn(err.Error(), "running", s.Status().Source)
	s.mu.Lock()
	s.st.LastError, s.st.LastErrorAt = err.Error(), time.Now().UTC()
	s.mu.Unlock()
	s.tell()
}

// OnChange has f called (without blocking: it must not wait for the
// source) when the last error of Status changed while the running
// document stays, so that a status document can follow it without asking
// all the time. A new document (Next returns it) and MarkBad say nothing:
// the caller knows, and says so once it runs the document. Call it before
// Next.
func (s *Source[T]) OnChange(f func()) { s.changed = f }

func (s *Source[T]) tell() {
	if s.changed != nil {
		s.changed()
	}
}

func (s *Source[T]) isBad(version string) (BadVersion, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bad[version]
	return b, ok
}

// MarkBad records that version was rolled back: it is not delivered again
// (unless it is the local file and nothing else is usable at start), it
// leaves the cache, and the status names the document that ran before it
// as running again.
func (s *Source[T]) MarkBad(version, reason string) error {
	b := BadVersion{Version: version, At: time.Now().UTC(), Reason: reason}
	s.mu.Lock()
	s.bad[version] = b
	if s.running.version == version {
		s.running, s.previous = s.previous, runningDoc{}
	}
	s.stored = entry{} // the cache's current may change below
	s.mu.Unlock()
	// No OnChange here: the caller rolls back and says so itself once
	// the running document is the previous one again.
	s.log.Warn("config: version marked bad", "version", short(version), "reason", reason)
	if s.cache == nil {
		return nil
	}
	return s.cache.markBad(b)
}

// Status is the state gateway.config.status reports.
func (s *Source[T]) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Source, st.Version, st.ETag = s.running.origin, s.running.version, s.running.etag
	st.BadVersions = make([]BadVersion, 0, len(s.bad))
	for _, b := range s.bad {
		st.BadVersions = append(st.BadVersions, b)
	}
	slices.SortFunc(st.BadVersions, func(a, b BadVersion) int { return a.At.Compare(b.At) })
	return st
}

// short abbreviates a version for logs and messages.
func short(version string) string {
	if len(version) > 12 {
		return version[:12]
	}
	return version
}
