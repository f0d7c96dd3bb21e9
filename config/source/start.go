package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/osgate/osgate/internal/sign"
)

func (s *Source[T]) initial(ctx context.Context) (Update[T], error) {
	var reasons []error
	ce, cached, err := s.loadCache()
	if err != nil {
		reasons = append(reasons, err)
		s.fail(err)
	}
	if s.fetch != nil {
		if ce != nil {
			s.fetch.remember(pulled{etag: ce.ETag, lastModified: ce.LastModified})
			s.etagVersion, s.etagRefusal = ce.Version, nil
		} else {
			s.fetch.forget()
		}
		u, e, outcome, err := s.pull(ctx)
		if ctx.Err() != nil {
			return Update[T]{}, ctx.Err()
		}
		s.record(outcome, err)
		switch {
		case u != nil:
			s.store(e)
			return s.deliver(*u, e.ETag), nil
		case outcome == "304" && ce != nil:
			return s.deliver(Update[T]{Config: cached, Document: ce.Doc, Version: ce.Version, Origin: Remote}, ce.ETag), nil
		case err != nil:
			reasons = append(reasons, err)
		}
		if ce != nil {
			return s.deliver(Update[T]{Config: cached, Document: ce.Doc, Version: ce.Version, Origin: Cache}, ce.ETag), nil
		}
	}
	doc, version, err := s.local.read()
	if err == nil {
		var cfg T
		if cfg, err = s.opts.Validate(doc); err == nil {
			if b, bad := s.isBad(version); bad {
				s.log.Warn("local config was marked bad but nothing else is usable: using it", "version", short(version), "marked_at", b.At, "reason", b.Reason)
			}
			return s.deliver(Update[T]{Config: cfg, Document: doc, Version: version, Origin: Local}, ""), nil
		}
		err = fmt.Errorf("local config %s is invalid:\n%w", s.opts.LocalPath, err)
	}
	reasons = append(reasons, err)
	err = fmt.Errorf("config source: no usable configuration: %w", errors.Join(reasons...))
	s.fail(err)
	return Update[T]{}, err
}

// loadCache returns the cached document when it is usable: signed (when a
// key is configured), not marked bad, and valid. Without remote the cache
// is not consulted.
func (s *Source[T]) loadCache() (*entry, T, error) {
	var zero T
	if s.cache == nil || s.fetch == nil {
		return nil, zero, nil
	}
	e, err := s.cache.current()
	if err != nil || e == nil {
		return nil, zero, err
	}
	s.mu.Lock()
	s.stored = entry{Version: e.Version, ETag: e.ETag, LastModified: e.LastModified}
	s.mu.Unlock()
	if s.fetch.pub != nil {
		if err := sign.Verify(s.fetch.pub, e.Doc, e.Sig); err != nil {
			return nil, zero, fmt.Errorf("cached config version %s refused: %w", short(e.Version), err)
		}
	}
	if b, bad := s.isBad(e.Version); bad {
		return nil, zero, fmt.Errorf("cached config version %s refused: marked bad at %s", short(e.Version), b.At.Format(time.RFC3339))
	}
	cfg, err := s.opts.ValidatePulled(e.Doc)
	if err != nil {
		return nil, zero, fmt.Errorf("cached config version %s is invalid:\n%w", short(e.Version), err)
	}
	return e, cfg, nil
}
