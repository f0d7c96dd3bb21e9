// Package rpc is osgate's JSON-RPC 2.0 service. The Server keeps a table of
// methods and answers request bodies with Handle, independently of any
// transport; Handler serves it over HTTP at /rpc behind an API key check
// (internal/apikey), next to /healthz and /metrics, and Serve runs that
// HTTP service with optional TLS. Another transport (JSON-RPC over MQTT from
// the cloud) does its own authentication and calls Handle. Client calls the
// service over HTTP.
package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/lograte"
	"github.com/osgate/osgate/internal/scope"
)

// Handler answers one method. params is the request's raw params (nil when
// absent); decode them with Params. The result is encoded as JSON. Return an
// *Error (possibly wrapped) to choose the JSON-RPC error, for example
// InvalidParams; any other error becomes -32000 with its message, so it must
// not carry secrets. ctx ends when the caller goes away or the service
// stops.
type Handler func(ctx context.Context, params json.RawMessage) (any, error)

// Method is one method: the scope a caller's key needs for it, its
// handler, and, for methods handed to a gateway by other parts (OTA), what
// rpc.discover says of it (Register keeps scope and handler; the gateway
// passes Doc to Describe).
type Method struct {
	Scope   scope.Scope
	Handler Handler
	Doc     Doc
}

// Options configure a Server.
type Options struct {
	// Keys are the API keys accepted on /rpc (SHA-256 digests only, each
	// with its scope). With none, every /rpc request is refused.
	Keys []apikey.Key
	// MaxBody bounds a request body in bytes (default 1 MiB).
	MaxBody int64
	// Health is the one health model's report, served at /healthz; nil
	// leaves /healthz unserved.
	Health func() health.Report
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Version is the software's version, for rpc.discover's document.
	Version string
}

// DefaultMaxBody is the body limit when Options.MaxBody is 0.
const DefaultMaxBody = 1 << 20

// A flood of refused requests logs at most authLogBurst lines per
// authLogWindow; osgate_rpc_auth_failures_total counts them all.
const (
	authLogBurst  = 20
	authLogWindow = time.Minute
)

// maxBatch bounds the requests in one batch.
const maxBatch = 100

// Server is the method table and its HTTP service.
type Server struct {
	keys    *apikey.Set
	maxBody int64
	health  func() health.Report
	log     *slog.Logger
	http    http.Handler
	mux     *http.ServeMux
	authLog lograte.Limit

	version string

	mu      sync.RWMutex
	methods map[string]Method
	docs    map[string]Doc // for rpc.discover
}

// New returns a Server without methods. A malformed key digest is an error
// whose strict.Errors paths are relative to the key list ("[1].sha256").
func New(opts Options) (*Server, error) {
	keys, err := apikey.New(opts.Keys)
	if err != nil {
		return nil, fmt.Errorf("rpc: api keys: %w", err)
	}
	if opts.MaxBody < 0 {
		return nil, fmt.Errorf("rpc: max body %d bytes: must not be negative", opts.MaxBody)
	}
	s := &Server{
		keys:    keys,
		maxBody: opts.MaxBody,
		health:  opts.Health,
		log:     opts.Logger,
		methods: map[string]Method{},
		docs:    map[string]Doc{},
		version: opts.Version,
		authLog: lograte.Limit{Burst: authLogBurst, Window: authLogWindow},
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.mux = s.routes()
	s.http = s.mux
	return s, nil
}

// Register adds method name, which callers whose key has scope need (or
// more) may call: scope.Read for status and lists, scope.Write for what
// changes the plant or the connectors, scope.Admin for the gateway's
// configuration, updates and keys. It panics on an empty or reserved
// ("rpc.") name, a nil handler, no scope, or a name registered twice:
// those are programming errors, like http.ServeMux's.
func (s *Server) Register(name string, need scope.Scope, h Handler) {
	if name == "" || strings.HasPrefix(name, "rpc.") || h == nil || need < scope.Read || need > scope.Admin {
		panic(fmt.Sprintf("rpc: Register(%q, %v): empty or reserved name, nil handler or no scope", name, need))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[name]; dup {
		panic(fmt.Sprintf("rpc: Register(%q): method already registered", name))
	}
	s.methods[name] = Method{Scope: need, Handler: h}
}

func (s *Server) lookup(name string) (Method, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.methods[name]
	return m, ok
}

// Scopes returns every registered method's name and the scope it needs.
func (s *Server) Scopes() map[string]scope.Scope {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]scope.Scope, len(s.methods))
	for name, m := range s.methods {
		out[name] = m.Scope
	}
	return out
}

type callerKey struct{}

// caller is who a transport authenticated.
type caller struct {
	name  string
	scope scope.Scope
}

// WithCaller returns ctx naming the authenticated caller (the key's name)
// and what its key may do; a transport calls it before Handle. Handle
// refuses every method that needs more than sc, and handlers and logs can
// tell who asked. A ctx without a caller may call nothing.
func WithCaller(ctx context.Context, name string, sc scope.Scope) context.Context {
	return context.WithValue(ctx, callerKey{}, caller{name: name, scope: sc})
}

// Caller is the name WithCaller put in ctx, or "".
func Caller(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c.name
}

// CallerScope is the scope WithCaller put in ctx, or scope.None.
func CallerScope(ctx context.Context) scope.Scope {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c.scope
}

// since is time.Since in milliseconds, for log attributes.
func since(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}
