package source

import (
	"context"
	"fmt"
	"time"

	"github.com/osgate/osgate/internal/sign"
)

// pull asks the fleet server once. outcome is "200" with an Update and
// the entry to cache, "304", "refused" or "error" with the reason.
func (s *Source[T]) pull(ctx context.Context) (*Update[T], *entry, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now := time.Now()
	p, err := s.fetch.fetch(ctx)
	if err != nil {
		return nil, nil, "error", err
	}
	if p.notModified {
		// The same document as last time: the same judgement. A refused
		// document stays refused (and says why) until the fleet changes
		// it; one accepted then may have been rolled back since.
		if b, bad := s.isBad(s.etagVersion); bad {
			return nil, nil, "refused", s.badErr(s.etagVersion, b)
		}
		if s.etagRefusal != nil {
			return nil, nil, "refused", s.etagRefusal
		}
		return nil, nil, "304", nil
	}
	version := versionOf(p.doc)
	if s.fetch.pub != nil {
		if err := sign.Verify(s.fetch.pub, p.doc, p.sig); err != nil {
			// Not remembered: the signature may land after the document.
			return nil, nil, "refused", fmt.Errorf("config version %s from %s refused: %w", short(version), s.fetch.docShown, err)
		}
	}
	// Remembered even when refused below, with the refusal: the document
	// is not downloaded again while unchanged, and every 304 for it
	// repeats the refusal.
	s.fetch.remember(p)
	s.etagVersion, s.etagRefusal = version, nil
	if b, bad := s.isBad(version); bad {
		return nil, nil, "refused", s.badErr(version, b)
	}
	cfg, err := s.opts.ValidatePulled(p.doc)
	if err != nil {
		s.etagRefusal = fmt.Errorf("config version %s from %s refused: invalid:\n%w", short(version), s.fetch.docShown, err)
		return nil, nil, "refused", s.etagRefusal
	}
	e := &entry{Doc: p.doc, Sig: p.sig, Version: version, ETag: p.etag, LastModified: p.lastModified, FetchedAt: now.UTC()}
	return &Update[T]{Config: cfg, Document: p.doc, Version: version, Origin: Remote}, e, "200", nil
}

func (s *Source[T]) badErr(version string, b BadVersion) error {
	return fmt.Errorf("config version %s from %s refused: it was rolled back at %s and is marked bad", short(version), s.fetch.docShown, b.At.Format(time.RFC3339))
}

// poll is one pull after the start: a changed, accepted document is
// returned; anything else only updates the status.
func (s *Source[T]) poll(ctx context.Context) (Update[T], bool) {
	u, e, outcome, err := s.pull(ctx)
	if ctx.Err() != nil {
		return Update[T]{}, false
	}
	s.record(outcome, err)
	s.mu.Lock()
	running := s.running.version
	s.mu.Unlock()
	switch {
	case u != nil:
		s.store(e)
		if u.Version == running {
			s.confirm(e.ETag)
			return Update[T]{}, false
		}
		return s.deliver(*u, e.ETag), true
	case outcome == "304" && s.etagVersion == running:
		s.confirm(s.fetch.etag)
	}
	return Update[T]{}, false
}

// checkLocal delivers the local file when it changed and is valid;
// noticed: the system said it did (reread).
func (s *Source[T]) checkLocal(noticed bool) (Update[T], bool) {
	read := s.local.changed
	if noticed {
		read = s.local.reread
	}
	doc, err := read()
	if err != nil {
		s.fail(err)
		return Update[T]{}, false
	}
	if doc == nil {
		return Update[T]{}, false
	}
	version := s.local.version
	if b, bad := s.isBad(version); bad {
		s.fail(fmt.Errorf("local config version %s refused: it was rolled back at %s and is marked bad", short(version), b.At.Format(time.RFC3339)))
		return Update[T]{}, false
	}
	cfg, err := s.opts.Validate(doc)
	if err != nil {
		s.fail(fmt.Errorf("local config %s (version %s) refused: invalid:\n%w", s.opts.LocalPath, short(version), err))
		return Update[T]{}, false
	}
	return s.deliver(Update[T]{Config: cfg, Document: doc, Version: version, Origin: Local}, ""), true
}

// store caches e, unless the cache already holds it with the same
// validators: a server without ETag or Last-Modified answers 200 every
// time, and the SD card need not be written for it.
func (s *Source[T]) store(e *entry) {
	if s.cache == nil {
		return
	}
	s.mu.Lock()
	same := e.Version == s.stored.Version && e.ETag == s.stored.ETag && e.LastModified == s.stored.LastModified
	s.mu.Unlock()
	if same {
		return
	}
	if err := s.cache.store(*e); err != nil {
		s.fail(err)
		return
	}
	s.mu.Lock()
	s.stored = entry{Version: e.Version, ETag: e.ETag, LastModified: e.LastModified}
	s.mu.Unlock()
}
