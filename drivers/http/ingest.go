package http

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/apikey"
)

// ingest is the connector in ingest mode.
type ingest struct {
	name    string
	log     *slog.Logger
	cfg     *ingestConfig
	rejects *mapping.Rejects
}

func newIngest(name string, log *slog.Logger, cfg *ingestConfig, stats core.Stats) *ingest {
	return &ingest{name: name, log: log, cfg: cfg, rejects: mapping.NewRejects(name, log, stats)}
}

// Listen serves the endpoint until ctx ends. It returns early if the
// address cannot be bound or the TLS files cannot be loaded (the core
// restarts it with back-off).
func (in *ingest) Listen(ctx context.Context, emit func(...core.Reading) error) error {
	var tc *tls.Config
	if in.cfg.certFile != "" {
		cert, err := tls.LoadX509KeyPair(in.cfg.certFile, in.cfg.keyFile)
		if err != nil {
			return fmt.Errorf("http ingest: load cert_file and key_file: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", in.cfg.listen)
	if err != nil {
		return fmt.Errorf("http ingest: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	srv := &http.Server{
		Handler:           &handler{in: in, emit: emit},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	in.log.Info("http ingest listening", "addr", ln.Addr().String(), "tls", tc != nil)
	select {
	case <-ctx.Done():
		// Requests blocked in emit return as emit sees ctx end.
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil {
			srv.Close()
		}
		<-served
		return ctx.Err()
	case err := <-served:
		return fmt.Errorf("http ingest: serve: %w", err)
	}
}

// Listens is the ingest address, for config validation.
func (in *ingest) Listens() []core.Listen {
	return []core.Listen{{Path: "settings.ingest.listen", Addr: in.cfg.listen}}
}

// Close releases nothing: the server lives inside Listen.
func (in *ingest) Close() error { return nil }

// handler serves one Listen's requests.
type handler struct {
	in   *ingest
	emit func(...core.Reading) error
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	key, err := apikey.FromRequest(r)
	if err == nil {
		if _, _, ok := h.in.cfg.keys.Check(key); !ok {
			err = errors.New("API key not accepted")
		}
	}
	if err != nil {
		h.in.rejects.Reject(r.URL.Path, "auth", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="osgate ingest"`)
		reply(w, http.StatusUnauthorized, err.Error())
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/plain") {
			reply(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/json (or text/plain for a text mapping)", ct))
			return
		}
	}
	if r.ContentLength > h.in.cfg.maxBody {
		h.in.rejects.Reject(r.URL.Path, mapping.ReasonTooLarge, fmt.Errorf("Content-Length %d", r.ContentLength))
		reply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes (max_body)", h.in.cfg.maxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.in.cfg.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.in.rejects.Reject(r.URL.Path, mapping.ReasonTooLarge, err)
			reply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes (max_body)", h.in.cfg.maxBody))
			return
		}
		reply(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	var sc mapping.Scratch
	rs, dropped, err := h.in.cfg.set.Readings(strings.TrimPrefix(r.URL.Path, "/"), body, time.Now(), &sc)
	if err != nil {
		var rj *mapping.Reject
		reason := mapping.ReasonPayload
		if errors.As(err, &rj) {
			reason = rj.Reason
		}
		h.in.rejects.Reject(r.URL.Path, reason, err)
		status := http.StatusUnprocessableEntity
		switch reason {
		case mapping.ReasonUnmatched:
			status = http.StatusNotFound
		case mapping.ReasonPayload:
			status = http.StatusBadRequest
		case mapping.ReasonTooLarge:
			status = http.StatusRequestEntityTooLarge
		}
		reply(w, status, err.Error())
		return
	}
	if dropped > 0 {
		h.in.rejects.Reject(r.URL.Path, mapping.ReasonUnconfigured, fmt.Errorf("%d readings of devices or channels that are not configured", dropped))
	}
	if err := h.emit(rs...); err != nil {
		// The sender retries the whole body (readings of some devices
		// may then repeat).
		if errors.Is(err, core.ErrStorageFull) {
			w.Header().Set("Retry-After", "10")
			reply(w, http.StatusInsufficientStorage, fmt.Sprintf("osgate's disk is full: the %d readings were not all stored, send again later", len(rs)))
			return
		}
		w.Header().Set("Retry-After", "5")
		reply(w, http.StatusServiceUnavailable, fmt.Sprintf("osgate is stopping; the %d readings were not all taken, send again", len(rs)))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]int{"accepted": len(rs), "ignored": dropped})
}

// reply writes {"error": msg} with status.
func reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
