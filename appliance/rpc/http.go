package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
)

// Handler serves /rpc (POST, application/json, "Authorization: Bearer
// KEY"), /healthz and /metrics. /healthz and /metrics need no key: they
// carry no secrets, and the service listens on loopback unless configured
// otherwise.
func (s *Server) Handler() http.Handler { return s.http }

// Route serves h at pattern (http.ServeMux's syntax, e.g. "/ui/") next
// to /rpc, /healthz and /metrics, on the same listener: the technician's
// pages (appliance/ui). h does its own authentication, with CheckKey.
func (s *Server) Route(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// CheckKey checks a key presented other than in an Authorization header
// (the sign-in form of the technician's pages) as /rpc checks its keys:
// it returns the key's name and scope, or counts and logs (rate-limited,
// never the key) a refusal from r's address.
func (s *Server) CheckKey(r *http.Request, key string) (caller string, sc scope.Scope, ok bool) {
	if caller, sc, ok = s.keys.Check(key); ok {
		return caller, sc, true
	}
	reason := "unknown API key"
	if key == "" {
		reason = "missing API key"
	}
	s.refused(r, reason)
	return "", scope.None, false
}

// CheckDigest says whether the key whose apikey.Digest is d is still
// accepted, and its name and scope now: a session made with a key ends
// when the key leaves the configuration, and follows a change of its
// scope.
func (s *Server) CheckDigest(d [32]byte) (caller string, sc scope.Scope, ok bool) {
	return s.keys.CheckDigest(d)
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/rpc", s.serveRPC)
	if s.health != nil {
		mux.HandleFunc("GET /healthz", s.serveHealth)
	}
	mux.Handle("GET /metrics", metrics.Registry.Handler())
	return mux
}

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, CodeInvalidRequest, fmt.Sprintf("HTTP method %.16s not allowed: use POST", r.Method))
		return
	}
	caller, sc, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, CodeInvalidRequest, fmt.Sprintf("content type %.64q not supported: send application/json", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > s.maxBody {
		s.tooLarge(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.tooLarge(w, r)
			return
		}
		s.log.Debug("rpc: read request body", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "could not read the request body")
		return
	}
	ctx, cancel := context.WithTimeout(WithCaller(r.Context(), caller, sc), callTimeout)
	defer cancel()
	resp := s.Handle(ctx, body)
	if len(resp) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

// authenticate checks the request's API key and returns its name and
// scope; on failure it has answered 401, logged why (never the key) and
// counted it.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller string, sc scope.Scope, ok bool) {
	key, err := apikey.FromRequest(r)
	challenge := `Bearer realm="osgate"`
	reason := ""
	switch {
	case errors.Is(err, apikey.ErrMissing):
		reason = "missing API key"
	case err != nil:
		reason = "malformed Authorization header"
		challenge += `, error="invalid_request"`
	default:
		if caller, sc, ok = s.keys.Check(key); ok {
			return caller, sc, true
		}
		reason = "unknown API key"
		challenge += `, error="invalid_token"`
	}
	s.refused(r, reason)
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, CodeUnauthorized, "unauthorized: "+reason+` (send "Authorization: Bearer KEY")`)
	return "", scope.None, false
}

// refused counts a refused key and logs it, at most authLogBurst lines a
// window.
func (s *Server) refused(r *http.Request, reason string) {
	metrics.RPCAuthFailures.Inc()
	if ok, suppressed := s.authLog.Allow(time.Now()); ok {
		s.log.Warn("rpc: request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "reason", reason, "user_agent", r.UserAgent(), "suppressed_since_last", suppressed)
	}
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request) {
	metrics.RPCRequests.WithLabelValues(labelInvalid, "too_large").Inc()
	s.log.Info("rpc: request too large", "remote", r.RemoteAddr, "content_length", r.ContentLength, "limit", s.maxBody)
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestEntityTooLarge, CodeInvalidRequest, fmt.Sprintf("request too large: the limit is %d bytes", s.maxBody))
}

// writeError answers a request refused before JSON-RPC dispatch, with a
// JSON-RPC error body so that clients have one format to read.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	b, _ := json.Marshal(errorResponse(nil, &Error{Code: code, Message: msg}))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// serveHealth answers 200 with the report while the gateway is ok or
// degraded, 503 when unhealthy.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health()
	b, err := json.Marshal(rep)
	if err != nil {
		s.log.Error("rpc: encode health report", "err", err)
		http.Error(w, "health report could not be encoded", http.StatusInternalServerError)
		return
	}
	status := http.StatusOK
	if rep.Status != health.OK && rep.Status != health.Degraded {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
