// Package ui is the technician's pages: a small web interface that the
// gateway serves under /ui/ on its JSON-RPC listener, for the person who
// wires the bus or pairs a sensor on site with a laptop or a phone. It
// shows the gateway's health and every device's state and last values,
// and runs the few actions commissioning needs.
//
// It has no data or powers of its own: a technician signs in with an API
// key, and every page and action is a call of the gateway's JSON-RPC
// methods (rpc.Server.Handle) in the name of that key, with its scope, so
// a read key sees and a write key acts, and every action is logged with
// the key's name as any RPC call is. Pages are rendered on the server and
// work without JavaScript; the one script (static/app.js) adds live
// updates (server-sent events), progress of long actions and copy
// buttons. Everything is embedded in the binary: no CDN, no build step.
package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/scope"
)

// Options configure the pages.
type Options struct {
	// RPC is the gateway's JSON-RPC service: its keys sign technicians
	// in, its methods fill the pages and run the actions.
	RPC *rpc.Server
	// Sessions are the sign-ins (NewSessions; the supervisor's outlive
	// one gateway). Nil: a store of its own.
	Sessions *Sessions
	// MaxBody bounds a form (the config to validate), in bytes (default
	// rpc.DefaultMaxBody).
	MaxBody int64
	Logger  *slog.Logger
}

// handler serves /ui/.
type handler struct {
	rpc      *rpc.Server
	sessions *Sessions
	maxBody  int64
	log      *slog.Logger
	mux      *http.ServeMux
	streams  chan struct{} // a slot per event stream
}

// maxStreams bounds the event streams served at once (open pages).
const maxStreams = 16

// New returns the handler of /ui/; the gateway mounts it with
// rpc.Server.Route("/ui/", ...).
func New(o Options) http.Handler {
	h := &handler{rpc: o.RPC, sessions: o.Sessions, maxBody: o.MaxBody, log: o.Logger,
		streams: make(chan struct{}, maxStreams)}
	if h.sessions == nil {
		h.sessions = NewSessions()
	}
	if h.maxBody <= 0 {
		h.maxBody = rpc.DefaultMaxBody
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/{$}", h.page(h.overview))
	m.HandleFunc("GET /ui/devices", h.page(h.devices))
	m.HandleFunc("GET /ui/devices/{name}", h.page(h.device))
	m.HandleFunc("GET /ui/commission", h.page(h.commission))
	m.HandleFunc("GET /ui/logs", h.page(h.logs))
	m.HandleFunc("GET /ui/login", h.loginForm)
	m.HandleFunc("POST /ui/login", h.login)
	m.HandleFunc("POST /ui/logout", h.post(h.logout))
	m.HandleFunc("POST /ui/act", h.post(h.act))
	m.HandleFunc("GET /ui/events", h.api(h.events))
	m.HandleFunc("GET /ui/diagnostics", h.api(h.bundle))
	m.HandleFunc("GET /ui/static/{file}", serveStatic)
	m.HandleFunc("/ui/", h.notFound)
	h.mux = m
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// No script, style, image or connection but the gateway's own; no
	// framing; nothing to sniff; no referrer to other sites (and the
	// gateway's own forms carry their Origin, which "no-referrer" would
	// make "null").
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// user is who a request comes from: the key's name and scope now, and
// the session's CSRF token.
type user struct {
	Name  string
	Scope scope.Scope
	CSRF  string
	token string
}

// CanWrite is whether the key may act (forms say so to read keys).
func (u user) CanWrite() bool { return u.Scope.Allows(scope.Write) }

// ScopeName is the key's scope for pages.
func (u user) ScopeName() string { return u.Scope.String() }

// signedIn returns the request's user, or false: no cookie, an ended
// session, or a key no longer in the configuration.
func (h *handler) signedIn(r *http.Request) (user, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return user{}, false
	}
	sess := h.sessions.get(c.Value)
	if sess == nil {
		return user{}, false
	}
	name, sc, ok := h.rpc.CheckDigest(sess.key)
	if !ok {
		h.sessions.end(c.Value)
		return user{}, false
	}
	return user{Name: name, Scope: sc, CSRF: sess.csrf, token: c.Value}, true
}

// page wraps a page: without a sign-in it sends the browser to the
// sign-in form, which brings it back.
func (h *handler) page(f func(http.ResponseWriter, *http.Request, user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := h.signedIn(r)
		if !ok {
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		f(w, r, u)
	}
}

// api wraps what scripts and downloads fetch: without a sign-in, 401.
func (h *handler) api(f func(http.ResponseWriter, *http.Request, user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := h.signedIn(r)
		if !ok {
			http.Error(w, "not signed in: sign in at /ui/login", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		f(w, r, u)
	}
}

// post wraps a form's action: same origin, signed in, and the session's
// CSRF token in the form (or the X-CSRF-Token header). The session
// cookie is SameSite=Strict besides, so another site's page cannot make
// the browser send it at all.
func (h *handler) post(f func(http.ResponseWriter, *http.Request, user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !sameOrigin(r) {
			http.Error(w, "refused: the form was sent from another site", http.StatusForbidden)
			return
		}
		u, ok := h.signedIn(r)
		if !ok {
			http.Error(w, "not signed in: sign in at /ui/login", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, fmt.Sprintf("the form could not be read (at most %d bytes): %v", h.maxBody, err), http.StatusRequestEntityTooLarge)
			return
		}
		tok := r.PostForm.Get("csrf")
		if tok == "" {
			tok = r.Header.Get("X-CSRF-Token")
		}
		if sess := h.sessions.get(u.token); sess == nil || !sess.csrfOK(tok) {
			http.Error(w, "refused: the form's token does not match this sign-in; reload the page and try again", http.StatusForbidden)
			return
		}
		f(w, r, u)
	}
}

// sameOrigin refuses requests a browser marks as coming from another
// site (Sec-Fetch-Site) or with an Origin other than this host.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser's cross-site form: those carry Origin
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	u, ok := h.signedIn(r)
	w.WriteHeader(http.StatusNotFound)
	h.render(w, "notfound", pageData{Title: "Not found", User: u, SignedIn: ok, Path: r.URL.Path})
}

// call runs method with params in u's name through the gateway's JSON-RPC
// service and decodes its result into out (nil: ignore it). The error of
// a refused or failed call is an *rpc.Error.
func (h *handler) call(ctx context.Context, u user, method string, params, out any) error {
	req := struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
		ID      int    `json:"id"`
	}{"2.0", method, params, 1}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("ui: encode %s params: %w", method, err)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *rpc.Error      `json:"error"`
	}
	raw := h.rpc.Handle(rpc.WithCaller(ctx, u.Name, u.Scope), body)
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("ui: %s: undecodable answer: %w", method, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("ui: %s: unexpected result: %w", method, err)
	}
	return nil
}

// has reports whether the gateway answers method (ota.status only with
// OTA settings).
func (h *handler) has(method string) bool {
	_, ok := h.rpc.Scopes()[method]
	return ok
}

// errText is an error as a page shows it: the JSON-RPC message.
func errText(err error) string {
	var re *rpc.Error
	if errors.As(err, &re) {
		return re.Message
	}
	return err.Error()
}

// loginForm shows the sign-in form (or sends a signed-in browser on).
func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := h.signedIn(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.render(w, "login", pageData{Title: "Sign in", Next: next})
}

// maxKeyLen bounds a key typed into the form (as in the Authorization
// header).
const maxKeyLen = 1024

// login checks the key of the form and starts a session.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !sameOrigin(r) {
		http.Error(w, "refused: the form was sent from another site", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4*maxKeyLen)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	next := safeNext(r.PostForm.Get("next"))
	if len(key) > maxKeyLen {
		key = ""
	}
	name, sc, ok := h.rpc.CheckKey(r, key)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, "login", pageData{Title: "Sign in", Next: next,
			Error: "This key is not accepted by the gateway. Use a key from rpc.api_keys (or the gateway's local key, state/rpc-key)."})
		return
	}
	if old, err := r.Cookie(cookieName); err == nil {
		h.sessions.end(old.Value) // a new sign-in never reuses a token
	}
	token, _ := h.sessions.create(keyDigest(key))
	http.SetCookie(w, sessionCookie(r, token))
	h.log.Info("ui: signed in", "caller", name, "scope", sc.String(), "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session.
func (h *handler) logout(w http.ResponseWriter, r *http.Request, u user) {
	h.sessions.end(u.token)
	http.SetCookie(w, sessionCookie(r, ""))
	h.log.Info("ui: signed out", "caller", u.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// safeNext is where to go after signing in: a path of these pages only.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui/login") || strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") {
		return "/ui/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/ui/"
	}
	return next
}

// deadline extends the write deadline of a long answer (an action, an
// event stream) past the RPC service's own.
func deadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
