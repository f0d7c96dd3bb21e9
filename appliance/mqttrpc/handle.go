package mqttrpc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
)

// Outcomes of a message that never reached a method, as the outcome label
// of osgate_rpc_requests_total{method="invalid"} (refused keys are counted
// in osgate_rpc_auth_failures_total instead, as over HTTP).
const (
	outDropped   = "dropped"   // no request id in the topic: nothing to answer
	outTooLarge  = "too_large" // over MaxBody
	outExpired   = "expired"
	outReplayed  = "replayed"
	outDuplicate = "duplicate" // the same message again: dropped unanswered
	outBusy      = "busy"
	outAuth      = "unauthorized"
	outInternal  = "internal_error" // the id journal could not be written
	outHandled   = "handled"        // passed to rpc.Server.Handle
)

// message is a request as it arrived. The payload of a message over
// MaxBody is not kept: only its size.
type message struct {
	topic   string
	payload []byte
	size    int
}

// handle checks one message and runs its request. It returns the id to
// answer on ("" when there is none: the message is dropped) and the
// response body (nil when there is nothing to send: a notification, or a
// second delivery of a request already run).
func (r *Responder) handle(ctx context.Context, m message) (id string, resp []byte) {
	id, ok := requestID(m.topic, r.reqTopic)
	if !ok {
		r.count(outDropped)
		r.refused("mqttrpc: request dropped: the topic has no valid request id (1-64 of A-Z a-z 0-9 . _ -); nothing to answer",
			"topic", fmt.Sprintf("%.200q", m.topic))
		r.report("", outDropped)
		return "", nil
	}
	resp, outcome := r.check(ctx, id, m.payload, max(m.size, len(m.payload)))
	r.report(id, outcome)
	return id, resp
}

// check runs the envelope checks in order: size, envelope, signature,
// expiry, replay; then the request, with the operator key's scope.
func (r *Responder) check(ctx context.Context, id string, payload []byte, size int) (resp []byte, outcome string) {
	if int64(size) > r.opts.MaxBody {
		r.count(outTooLarge)
		r.refused("mqttrpc: request refused: too large", "id", id, "bytes", size, "limit", r.opts.MaxBody)
		return errorBody(rpc.CodeInvalidRequest, fmt.Sprintf("request too large: %d bytes; the limit is %d bytes", size, r.opts.MaxBody)), outTooLarge
	}
	env, perr := parseEnvelope(payload)
	if perr == errBearer {
		metrics.RPCAuthFailures.Inc()
		r.refused("mqttrpc: request refused: it carries an API key (the envelope of earlier versions); requests must be signed with an operator key", "id", id)
		return errorBody(perr.Code, perr.Message), outAuth
	}
	if perr != nil {
		out := "invalid_request"
		if perr.Code == rpc.CodeParseError {
			out = "parse_error"
		}
		r.count(out)
		r.refused("mqttrpc: request refused: malformed envelope", "id", id, "error", perr.Message)
		return errorBody(perr.Code, perr.Message), out
	}
	op, reason, ok := r.authenticate(id, env)
	if !ok {
		return errorBody(rpc.CodeUnauthorized, "unauthorized: "+reason), outAuth
	}
	caller := env.signer
	now := r.now()
	switch {
	case !now.Before(env.expires):
		r.count(outExpired)
		r.refused("mqttrpc: request refused: expired", "id", id, "caller", caller, "expires", env.expires, "gateway_time", now)
		return errorBody(CodeExpired, fmt.Sprintf("request expired at %s (gateway time %s)",
			env.expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))), outExpired
	case env.expires.Sub(now) > r.opts.MaxLifetime:
		r.count(outExpired)
		r.refused("mqttrpc: request refused: expiry too far ahead", "id", id, "caller", caller, "expires", env.expires, "gateway_time", now)
		return errorBody(CodeExpired, fmt.Sprintf("expires %s is more than %s after the gateway time %s; the gateway's clock may not be set yet",
			env.expires.UTC().Format(time.RFC3339), r.opts.MaxLifetime, now.UTC().Format(time.RFC3339))), outExpired
	}
	digest := sha256.Sum256(payload)
	var sum [16]byte
	copy(sum[:], digest[:])
	v, err := r.ids.check(id, sum, env.expires, now)
	switch {
	case err != nil:
		r.count(outInternal)
		r.log.Error("mqttrpc: cannot record the request id; refusing the request, since a restart would forget it", "id", id, "error", err)
		return errorBody(rpc.CodeInternalError, "internal error: the gateway could not record the request id"), outInternal
	case v == duplicate:
		r.count(outDuplicate)
		r.log.Info("mqttrpc: the same request arrived again; it ran once and is not answered again", "id", id, "caller", caller)
		return nil, outDuplicate
	case v == replayed:
		r.count(outReplayed)
		r.refused("mqttrpc: request refused: request id used before", "id", id, "caller", caller)
		return errorBody(CodeReplayed, fmt.Sprintf("request id %q was used before; use a new id for every request", id)), outReplayed
	case v == full:
		r.count(outBusy)
		r.refused("mqttrpc: request refused: too many live request ids", "id", id, "caller", caller, "limit", r.opts.MaxIDs)
		return errorBody(CodeBusy, "busy: too many requests within their expiry; retry later under a new id"), outBusy
	}
	callCtx, cancel := context.WithTimeout(rpc.WithCaller(ctx, caller, op.scope), r.opts.CallTimeout)
	defer cancel()
	start := time.Now()
	resp = r.opts.Server.Handle(callCtx, env.request)
	if int64(len(resp)) > r.opts.MaxBody {
		// The broker would drop it (message_size_limit): say so instead.
		r.log.Warn("mqttrpc: response too large for the broker; answering with an error", "id", id, "caller", caller, "bytes", len(resp), "limit", r.opts.MaxBody)
		resp = errorBody(rpc.CodeInternalError, fmt.Sprintf("internal error: the response is %d bytes, over the limit of %d bytes (rpc.max_body); "+
			"ask for less (one device, not a batch)", len(resp), r.opts.MaxBody))
	}
	r.log.Debug("mqttrpc: request answered", "id", id, "caller", caller, "ms", time.Since(start).Milliseconds(), "bytes", len(resp))
	return resp, outHandled
}

// authenticate finds the envelope's signer among the operator keys and
// checks its signature over this gateway, the request id, expiry and
// request. On failure it returns the reason (naming what a signature must
// cover), has logged it (rate-limited) and counted it.
func (r *Responder) authenticate(id string, env envelope) (operator, string, bool) {
	op, known := r.operators[env.signer]
	var reason string
	switch {
	case !known:
		reason = fmt.Sprintf("unknown signer %.64q: the gateway has no operator key of that name (rpc.operator_keys)", env.signer)
	default:
		if err := verify(op.pub, r.opts.GatewayID, id, env); err != nil {
			reason = err.Error()
		}
	}
	if reason == "" {
		return op, "", true
	}
	metrics.RPCAuthFailures.Inc()
	r.refused("mqttrpc: request refused", "id", id, "signer", fmt.Sprintf("%.64q", env.signer), "reason", reason)
	return operator{}, reason, false
}

func (r *Responder) count(outcome string) {
	metrics.RPCRequests.WithLabelValues("invalid", outcome).Inc()
}

func (r *Responder) report(id, outcome string) {
	if r.observe != nil {
		r.observe(id, outcome)
	}
}

// refused logs a refusal at warning level, at most a burst a minute; the
// next line written says how many were left out.
func (r *Responder) refused(msg string, args ...any) {
	ok, suppressed := r.refusals.Allow(time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	r.log.Warn(msg, args...)
}

// errorBody is a JSON-RPC error response with a null id: the topic's
// request id tells the caller which request it answers.
func errorBody(code int, msg string) []byte {
	b, err := json.Marshal(struct {
		JSONRPC string     `json:"jsonrpc"`
		Error   *rpc.Error `json:"error"`
		ID      *int       `json:"id"`
	}{"2.0", &rpc.Error{Code: code, Message: msg}, nil})
	if err != nil {
		panic(fmt.Sprintf("mqttrpc: encode error response: %v", err)) // a code and a string always encode
	}
	return b
}
