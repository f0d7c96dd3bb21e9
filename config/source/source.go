package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/osgate/osgate/internal/fswatch"
	"github.com/osgate/osgate/internal/prom"
)

// Options configure a Source. T is what the validate function makes of a
// document: *config.Config with config.Parse.
type Options[T any] struct {
	// LocalPath is the local file (osgate.json): the bootstrap, and the
	// configuration of last resort.
	LocalPath string
	// StateDir holds the cache, config.db; "" runs without a cache.
	StateDir string
	// Gateway replaces {gateway} in the remote URLs.
	Gateway string
	// Remote is the local file's "remote" block; nil: the local file is
	// the whole configuration.
	Remote *RemoteSettings
	// Validate checks a whole document and returns what the gateway
	// applies (config.Parse). A document it refuses is never delivered.
	Validate func(doc []byte) (T, error)
	// ValidatePulled, when set, checks documents from the fleet server
	// and the cache instead of Validate: the local file's Validate may
	// accept what a pulled document must not set (config.ParsePulled).
	ValidatePulled func(doc []byte) (T, error)
	// LocalPoll is how often the local file is checked for changes while
	// it is the running configuration (default 2s), where the system does
	// not say when it changes. On Linux it does (inotify): the file is
	// checked when it changed, and every minute (or LocalPoll, if longer)
	// in case a change went unnoticed (a file bind-mounted into a
	// container and replaced outside it).
	LocalPoll time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Metrics is the registry /metrics serves; the source puts
	// osgate_config_fetches_total on it. Nil: not served.
	Metrics *prom.Registry
}

// Update is a validated document for the gateway to apply.
type Update[T any] struct {
	Config   T
	Document []byte
	// Version is the hex SHA-256 of Document; MarkBad takes it.
	Version string
	Origin  Origin
}

// Source delivers, one at a time through Next, the documents the gateway
// should run. Next is called from one goroutine; Status and MarkBad may be
// called from any.
type Source[T any] struct {
	opts     Options[T]
	log      *slog.Logger
	fetch    *fetcher // nil without remote
	cache    *cache   // nil without state dir, or when it cannot be opened
	local    localFile
	interval time.Duration
	timeout  time.Duration

	// Used by the goroutine calling Next only.
	started     bool
	failures    int
	nextPull    time.Time
	nextLocal   time.Time
	etagVersion string         // version whose validators the fetcher holds
	etagRefusal error          // why that version was refused; nil if accepted
	watch       *fswatch.Watch // of the local file; nil: none (yet, or possible)
	watchTried  bool

	mu       sync.Mutex
	st       Status
	running  runningDoc
	previous runningDoc
	bad      map[string]BadVersion
	stored   entry // what the cache holds as current (without Doc)

	// changed is told of each change of Status (OnChange).
	changed func()
}

type runningDoc struct {
	version string
	origin  Origin
	etag    string
}

// CacheFile is the name of the cache in the state dir.
const CacheFile = "config.db"

// New prepares a Source: it checks the options, builds the HTTP client and
// opens the cache (moving a corrupt one aside). It does no network I/O.
func New[T any](opts Options[T]) (*Source[T], error) {
	if opts.Validate == nil {
		return nil, errors.New("config source: no validate function")
	}
	if opts.LocalPath == "" {
		return nil, errors.New("config source: no local file")
	}
	if opts.ValidatePulled == nil {
		opts.ValidatePulled = opts.Validate
	}
	if opts.LocalPoll <= 0 {
		opts.LocalPoll = 2 * time.Second
	}
	if err := register(opts.Metrics); err != nil {
		return nil, fmt.Errorf("config source: metrics: %w", err)
	}
	s := &Source[T]{
		opts:  opts,
		log:   opts.Logger,
		local: localFile{path: opts.LocalPath},
		bad:   map[string]BadVersion{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "config")
	if r := opts.Remote; r != nil {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("config source: remote:\n%w", err)
		}
		f, err := newFetcher(r, opts.Gateway)
		if err != nil {
			return nil, err
		}
		s.fetch, s.interval, s.timeout = f, r.interval(), r.timeout()
		s.st.URL = f.docShown
	}
	if opts.StateDir != "" {
		s.openCache()
	}
	return s, nil
}

// openCache opens the cache; without one the source still works (remote
// and local file), which is reported in the status.
func (s *Source[T]) openCache() {
	if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
		s.fail(fmt.Errorf("config cache: %w", err))
		return
	}
	c, moved, err := openCache(filepath.Join(s.opts.StateDir, CacheFile), s.log)
	if err != nil {
		s.fail(err)
		return
	}
	if moved != "" {
		s.fail(fmt.Errorf("config cache was corrupt, moved aside to %s", moved))
	}
	bad, err := c.bad()
	if err != nil {
		s.fail(err)
	}
	for _, b := range bad {
		s.bad[b.Version] = b
	}
	s.cache = c
}

// Close closes the cache. Next must not be running.
func (s *Source[T]) Close() error {
	if s.watch != nil {
		s.watch.Close()
		s.watch = nil
	}
	if s.cache == nil {
		return nil
	}
	return s.cache.close()
}

// Next blocks until there is a document to apply, or ctx ends. The first
// call returns the starting configuration: the remote document if the
// fleet server answers within the timeout and it is valid, else the cached
// one, else the local file. It fails only when none of them is usable;
// the caller may then run a built-in default, or call Next again after a
// pause (each call asks the fleet once). Later calls return changed
// documents: from the fleet server, or from the local file while it is
// the running configuration.
func (s *Source[T]) Next(ctx context.Context) (Update[T], error) {
	if !s.started {
		u, err := s.initial(ctx)
		if err == nil {
			s.started = true
			now := time.Now()
			s.nextPull = now.Add(nextDelay(s.interval, s.failures))
			s.nextLocal = now.Add(s.opts.LocalPoll)
		}
		return u, err
	}
	for {
		at := s.nextLocal
		local := s.watchLocal()
		var changed <-chan struct{}
		if local {
			if w := s.watchFile(); w != nil {
				changed = w.C()
			}
		}
		pullDue := s.fetch != nil && (!local || s.nextPull.Before(at))
		if pullDue {
			at = s.nextPull
		}
		t := time.NewTimer(time.Until(at))
		noticed := false
		select {
		case <-ctx.Done():
			t.Stop()
			var zero Update[T]
			return zero, ctx.Err()
		case <-changed:
			t.Stop()
			// Let the writer finish (a write and its close are two
			// notices), then look once.
			settle := time.NewTimer(localSettle)
			select {
			case <-ctx.Done():
				settle.Stop()
				var zero Update[T]
				return zero, ctx.Err()
			case <-settle.C:
			}
			select {
			case <-changed:
			default:
			}
			pullDue, noticed = false, true
		case <-t.C:
		}
		if pullDue {
			u, ok := s.poll(ctx)
			s.nextPull = time.Now().Add(nextDelay(s.interval, s.failures))
			if ok {
				return u, nil
			}
			continue
		}
		s.nextLocal = time.Now().Add(s.localEvery())
		if u, ok := s.checkLocal(noticed); ok {
			return u, nil
		}
	}
}

// localSettle is how long after a notice of change the local file is
// read; localSafety how often it is looked at anyway while changes are
// noticed.
const (
	localSettle = 100 * time.Millisecond
	localSafety = time.Minute
)

// watchFile is the watch of the local file, started at the first call;
// nil where changes are not noticed (the source then looks every
// LocalPoll).
func (s *Source[T]) watchFile() *fswatch.Watch {
	if !s.watchTried {
		s.watchTried = true
		w, err := fswatch.File(s.opts.LocalPath)
		if err != nil {
			s.log.Debug("config: changes of the local file are looked for every "+s.opts.LocalPoll.String(), "reason", err)
			return nil
		}
		s.watch = w // the next look is still LocalPoll after the start: a change before the watch began is not missed
	}
	return s.watch
}

// localEvery is how often the local file is looked at without a notice.
func (s *Source[T]) localEvery() time.Duration {
	if s.watch != nil {
		return max(s.opts.LocalPoll, localSafety)
	}
	return s.opts.LocalPoll
}

// watchLocal says whether the local file is the running configuration.
func (s *Source[T]) watchLocal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch == nil || s.running.origin == Local
}
