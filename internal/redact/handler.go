package redact

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Handler is a slog.Handler that cuts known secret values out of every
// record before the next handler sees it: the message, string and error
// attributes, and groups. It is the last line of defence; code should not
// log secrets in the first place. SetSecrets changes the values (for a new
// configuration) for every logger made from the Handler.
type Handler struct {
	next    slog.Handler
	secrets *atomic.Pointer[[]string]
}

// NewHandler wraps next.
func NewHandler(next slog.Handler) *Handler {
	return &Handler{next: next, secrets: &atomic.Pointer[[]string]{}}
}

// SetSecrets sets the values to cut out from now on.
func (h *Handler) SetSecrets(secrets []string) { h.secrets.Store(&secrets) }

func (h *Handler) current() []string {
	if p := h.secrets.Load(); p != nil {
		return *p
	}
	return nil
}

// Enabled is next's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle scrubs r and hands it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	secrets := h.current()
	if len(secrets) == 0 {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message, secrets), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(a, secrets))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs scrubs the attributes now; later SetSecrets do not reach them
// (loggers are made with attributes that are names, not secrets).
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	secrets := h.current()
	for i := range as {
		as[i] = scrubAttr(as[i], secrets)
	}
	return &Handler{next: h.next.WithAttrs(as), secrets: h.secrets}
}

// WithGroup is next's, scrubbed alike.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), secrets: h.secrets}
}

func scrubAttr(a slog.Attr, secrets []string) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String(), secrets))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = scrubAttr(ga, secrets)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Scrub(x.Error(), secrets))
		case []string:
			ys := make([]string, len(x))
			for i, s := range x {
				ys[i] = Scrub(s, secrets)
			}
			return slog.Any(a.Key, ys)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
