// Package mqttrpc answers osgate's JSON-RPC 2.0 over MQTT, so that a
// gateway can be managed from the cloud with no inbound connection: the
// cloud publishes a request on rpc/{gateway}/request/{id}, the bridge of
// the local Mosquitto brings it in, the Responder checks the envelope
// (size, an operator's ed25519 signature over the request, this gateway
// and the request id, expiry, replayed id) and runs it on the same
// rpc.Server as the HTTP service with the operator key's scope, and
// publishes the answer on rpc/{gateway}/response/{id}, which the bridge
// sends up. No secret crosses the broker. README.md describes the
// protocol; Sign makes a request.
package mqttrpc

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/lograte"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
)

// Error codes of the envelope checks, next to rpc's (-32001 unauthorized
// is rpc.CodeUnauthorized, as over HTTP).
const (
	// CodeExpired: the request's "expires" has passed, or lies more than
	// Options.MaxLifetime ahead of the gateway's clock.
	CodeExpired = -32002
	// CodeReplayed: the request id was used before (with another payload)
	// and has not expired.
	CodeReplayed = -32003
	// CodeBusy: the gateway has too many requests queued or too many live
	// ids; send again later under a new id.
	CodeBusy = -32004
)

// Defaults of Options.
const (
	defaultMaxLifetime = time.Hour
	defaultWorkers     = 4
	defaultMaxIDs      = 10000
	defaultCallTimeout = 60 * time.Second
)

// queueLen bounds the requests waiting for a worker; beyond it a request
// is answered with CodeBusy at once.
const queueLen = 64

// Options configure a Responder.
type Options struct {
	// URL of the local broker ("tcp://127.0.0.1:1883").
	URL string
	// ClientID is the Responder's fixed MQTT client id; {gateway} is
	// replaced (default "osgate-rpc-{gateway}"). It must differ from the
	// export's: the session on the broker is persistent.
	ClientID           string
	Username, Password string
	// GatewayID names the gateway in the topics.
	GatewayID string
	// Operators are the keys whose signed requests run, each with its
	// scope (rpc.operator_keys). With none, every request is refused.
	Operators []apikey.Operator
	// Server runs the requests.
	Server *rpc.Server
	// StateDir holds the journal of request ids (StateFile).
	StateDir string
	// MaxBody bounds a request message, and a response, in bytes
	// (default rpc.DefaultMaxBody). The managed broker drops messages
	// over it (message_size_limit): a larger response is replaced by an
	// error.
	MaxBody int64
	// MaxLifetime bounds how far ahead "expires" may lie (default 1 h):
	// ids are remembered that long.
	MaxLifetime time.Duration
	// Workers run requests concurrently (default 4).
	Workers int
	// MaxIDs bounds the ids remembered at once (default 10000); more live
	// requests are refused with CodeBusy.
	MaxIDs int
	// CallTimeout bounds one request's run (default 60 s).
	CallTimeout time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Responder answers JSON-RPC requests arriving over MQTT. Run it once.
type Responder struct {
	opts      Options
	operators map[string]operator // by name
	log       *slog.Logger
	reqTopic  string // "rpc/{gateway}/request/"
	resTopic  string // "rpc/{gateway}/response/"
	ids       *idMemory
	refusals  lograte.Limit
	running   atomic.Bool
	ready     chan struct{} // closed after the first subscription
	// now is the clock (tests move it).
	now func() time.Time
	// observe, when set (tests), hears the outcome of every message.
	observe func(id, outcome string)
}

// BridgeTopics returns the bridge topic filters that RPC over MQTT needs:
// requests come in on in ("rpc/{gateway}/request/#"), responses go out on
// out ("rpc/{gateway}/response/#"), both at QoS 1.
func BridgeTopics(gatewayID string) (in, out string) {
	return "rpc/" + gatewayID + "/request/#", "rpc/" + gatewayID + "/response/#"
}

// RequestTopic is where a caller publishes request id for a gateway, and
// ResponseTopic where the answer comes ("+" as gatewayID: every
// gateway's answer to that id).
func RequestTopic(gatewayID, id string) string { return "rpc/" + gatewayID + "/request/" + id }

// ResponseTopic: see RequestTopic.
func ResponseTopic(gatewayID, id string) string { return "rpc/" + gatewayID + "/response/" + id }

// New checks opts and opens the request id journal under StateDir (Run
// closes it). Ids read back from it stay refused until they expire.
func New(opts Options) (*Responder, error) {
	if opts.URL == "" {
		return nil, errors.New("mqttrpc: no broker URL")
	}
	if opts.Server == nil {
		return nil, errors.New("mqttrpc: no rpc.Server")
	}
	if opts.StateDir == "" {
		return nil, errors.New("mqttrpc: no state dir for the request id journal")
	}
	if opts.GatewayID == "" || strings.ContainsAny(opts.GatewayID, "/+#\x00") {
		return nil, fmt.Errorf("mqttrpc: gateway id %q: must be one MQTT topic level without wildcards", opts.GatewayID)
	}
	operators, err := parseOperators(opts.Operators)
	if err != nil {
		return nil, fmt.Errorf("mqttrpc: operator keys: %w", err)
	}
	if opts.MaxBody < 0 || opts.MaxLifetime < 0 || opts.Workers < 0 || opts.MaxIDs < 0 || opts.CallTimeout < 0 {
		return nil, errors.New("mqttrpc: max body, max lifetime, workers, max ids and call timeout must not be negative")
	}
	setDefaults(&opts)
	log := opts.Logger.With("transport", "mqtt")
	r := &Responder{
		opts:      opts,
		operators: operators,
		log:       log,
		reqTopic:  "rpc/" + opts.GatewayID + "/request/",
		resTopic:  "rpc/" + opts.GatewayID + "/response/",
		refusals:  lograte.Limit{Burst: 20, Window: time.Minute},
		ready:     make(chan struct{}),
		now:       time.Now,
	}
	ids, bad, err := openIDs(filepath.Join(opts.StateDir, StateFile), opts.MaxIDs, r.now())
	if err != nil {
		return nil, fmt.Errorf("mqttrpc: %w", err)
	}
	if bad > 0 {
		log.Warn("mqttrpc: request id journal had unreadable lines; they were left out (a torn last line after a power cut is one)",
			"file", ids.path, "lines", bad)
	}
	r.ids = ids
	if len(operators) == 0 {
		log.Warn("mqttrpc: no operator keys (rpc.operator_keys): every request over MQTT is refused")
	}
	return r, nil
}

// parseOperators checks the operator keys; problems are strict.Errors
// with paths relative to the list ("[1].public_key").
func parseOperators(keys []apikey.Operator) (map[string]operator, error) {
	var es strict.Errors
	out := make(map[string]operator, len(keys))
	for i, k := range keys {
		at := strict.Index("", i)
		if k.Name == "" || len(k.Name) > maxSigner {
			es.Add(strict.Join(at, "name"), "must be 1 to %d bytes", maxSigner)
		} else if _, dup := out[k.Name]; dup {
			es.Add(strict.Join(at, "name"), "%q names another key too", k.Name)
		}
		pub, err := sign.ParsePublicKey(k.PublicKey)
		if err != nil {
			es.Add(strict.Join(at, "public_key"), "%v", err)
		}
		sc, err := scope.Parse(k.Scope)
		if err != nil {
			es.Add(strict.Join(at, "scope"), "%v", err)
		}
		out[k.Name] = operator{pub: pub, scope: sc}
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func setDefaults(o *Options) {
	if o.ClientID == "" {
		o.ClientID = "osgate-rpc-{gateway}"
	}
	o.ClientID = strings.ReplaceAll(o.ClientID, "{gateway}", o.GatewayID)
	if o.MaxBody == 0 {
		o.MaxBody = rpc.DefaultMaxBody
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = defaultMaxLifetime
	}
	if o.Workers == 0 {
		o.Workers = defaultWorkers
	}
	if o.MaxIDs == 0 {
		o.MaxIDs = defaultMaxIDs
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = defaultCallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
