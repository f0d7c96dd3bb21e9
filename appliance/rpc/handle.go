package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/scope"
)

// response is one JSON-RPC 2.0 response: exactly one of Result and Error.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

// Method labels of metrics.RPCRequests for requests that name no
// registered method.
const (
	labelInvalid = "invalid" // not a request at all
	labelUnknown = "unknown" // a method nobody registered
)

// Handle answers a JSON-RPC 2.0 body (one request or a batch) and returns
// the response body, or nil when nothing is to be sent back (a
// notification, or a batch of them). It never fails: malformed input gets
// its JSON-RPC error. The members of a batch run one after another, in
// order. Authentication is the transport's job, before Handle; it may name
// the caller with WithCaller.
func (s *Server) Handle(ctx context.Context, body []byte) []byte {
	body = bytes.TrimLeft(body, " \t\r\n")
	if !json.Valid(body) {
		metrics.RPCRequests.WithLabelValues(labelInvalid, outcome(CodeParseError)).Inc()
		return encode(s.log, errorResponse(nil, &Error{Code: CodeParseError, Message: "parse error: the body is not valid JSON"}))
	}
	if first(body) != '[' {
		return s.one(ctx, body)
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(body, &batch); err != nil {
		// Valid JSON starting with '[' is an array; keep a clear answer anyway.
		return encode(s.log, errorResponse(nil, invalidRequest("a batch must be an array of requests")))
	}
	switch {
	case len(batch) == 0:
		metrics.RPCRequests.WithLabelValues(labelInvalid, outcome(CodeInvalidRequest)).Inc()
		return encode(s.log, errorResponse(nil, invalidRequest("empty batch")))
	case len(batch) > maxBatch:
		metrics.RPCRequests.WithLabelValues(labelInvalid, outcome(CodeInvalidRequest)).Inc()
		return encode(s.log, errorResponse(nil, invalidRequest(fmt.Sprintf("batch of %d requests; at most %d", len(batch), maxBatch))))
	}
	var out bytes.Buffer
	for _, raw := range batch {
		resp := s.one(ctx, raw)
		if resp == nil {
			continue
		}
		if out.Len() == 0 {
			out.WriteByte('[')
		} else {
			out.WriteByte(',')
		}
		out.Write(resp)
	}
	if out.Len() == 0 {
		return nil
	}
	out.WriteByte(']')
	return out.Bytes()
}

// one answers one request object; nil for a notification.
func (s *Server) one(ctx context.Context, raw json.RawMessage) []byte {
	req, rerr := decodeRequest(raw)
	if rerr != nil {
		metrics.RPCRequests.WithLabelValues(labelInvalid, outcome(rerr.Code)).Inc()
		return encode(s.log, errorResponse(req.id, rerr))
	}
	result, rerr := s.call(ctx, req)
	if req.id == nil {
		return nil
	}
	if rerr != nil {
		return encode(s.log, errorResponse(req.id, rerr))
	}
	return encode(s.log, &response{JSONRPC: "2.0", Result: result, ID: req.id})
}

// call runs the method's handler if the caller's scope allows it, turning
// its errors and panics into JSON-RPC errors, and counts and logs the
// call: every write and admin call is logged at info level with the
// caller and its params (secrets redacted).
func (s *Server) call(ctx context.Context, req request) (result json.RawMessage, rerr *Error) {
	start := time.Now()
	label := req.method
	m, found := s.lookup(req.method)
	if req.method == Discover {
		m, found = Method{Scope: scope.Read, Handler: s.discover}, true
	}
	if !found {
		label = labelUnknown
	}
	defer func() {
		out := "ok"
		if rerr != nil {
			out = outcome(rerr.Code)
		}
		metrics.RPCRequests.WithLabelValues(label, out).Inc()
		s.log.Debug("rpc: call", "method", label, "caller", Caller(ctx), "outcome", out, "ms", since(start))
		if found && m.Scope >= scope.Write && out != "forbidden" {
			s.audit(ctx, req, m.Scope, out, rerr, start)
		}
	}()
	if !found {
		return nil, s.notFound(req.method)
	}
	if have := CallerScope(ctx); !have.Allows(m.Scope) {
		if ok, suppressed := s.authLog.Allow(time.Now()); ok {
			s.log.Warn("rpc: call refused: the key's scope does not allow the method", "method", req.method,
				"needs", m.Scope.String(), "caller", Caller(ctx), "scope", have.String(), "suppressed_since_last", suppressed)
		}
		return nil, &Error{Code: CodeForbidden, Message: fmt.Sprintf("forbidden: %s needs a key with scope %q or more; this key's scope is %q",
			req.method, m.Scope, have)}
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc: handler panicked", "method", req.method, "caller", Caller(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			result, rerr = nil, &Error{Code: CodeInternalError, Message: "internal error"}
		}
	}()
	v, err := m.Handler(ctx, req.params)
	if err != nil {
		return nil, asError(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("rpc: encode result", "method", req.method, "err", err)
		return nil, &Error{Code: CodeInternalError, Message: "internal error: the result could not be encoded"}
	}
	return b, nil
}

// maxAuditParams bounds the params written to the log with a call.
const maxAuditParams = 2048

// audit logs a write or admin call: who called what with which params
// (secrets redacted, as in the configuration), and how it ended.
func (s *Server) audit(ctx context.Context, req request, need scope.Scope, out string, rerr *Error, start time.Time) {
	params := "null"
	if req.params != nil {
		params = string(redact.JSON(req.params))
	}
	if len(params) > maxAuditParams {
		params = fmt.Sprintf("%s (%d bytes)", redact.Clip(params, maxAuditParams), len(params))
	}
	args := []any{"method", req.method, "scope", need.String(), "caller", Caller(ctx), "params", params, "outcome", out, "ms", since(start)}
	if rerr != nil {
		args = append(args, "error", rerr.Message)
	}
	s.log.Info("rpc: "+need.String()+" call", args...)
}

func errorResponse(id json.RawMessage, e *Error) *response {
	if id == nil {
		id = json.RawMessage("null")
	}
	return &response{JSONRPC: "2.0", Error: e, ID: id}
}

// encode marshals a response; an error whose Data does not encode is sent
// without it.
func encode(log *slog.Logger, r *response) []byte {
	b, err := json.Marshal(r)
	if err == nil {
		return b
	}
	log.Error("rpc: encode response", "err", err)
	if r.Error == nil {
		// Results are encoded before they get here; only Data can fail.
		r.Error = &Error{Code: CodeInternalError, Message: "internal error: the response could not be encoded"}
		r.Result = nil
	}
	e := *r.Error
	e.Data = nil
	r.Error = &e
	b, err = json.Marshal(r)
	if err != nil {
		// Only strings and codes are left; this cannot fail.
		panic(fmt.Sprintf("rpc: encode response: %v", err))
	}
	return b
}
