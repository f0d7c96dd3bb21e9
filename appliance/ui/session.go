package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/lru"
)

// Session bounds: a sign-in lasts sessionIdle without a request and
// sessionMax at most; at most maxSessions are kept, the least recently
// used one ends first.
const (
	sessionIdle = 30 * time.Minute
	sessionMax  = 12 * time.Hour
	maxSessions = 64
)

// cookieName is the session cookie: HttpOnly, SameSite=Strict, Path=/ui/,
// Secure over TLS.
const cookieName = "osgate_ui"

// Sessions are the sign-ins of the technician's pages. A session holds
// the SHA-256 of the key it was made with, never the key: each request
// asks the running gateway's key set whether that key is still accepted
// and with what scope, so removing a key from the configuration ends its
// sessions and a changed scope applies at once. The supervisor keeps one
// Sessions for every gateway it runs, so a new configuration does not
// sign anyone out. Safe for concurrent use.
type Sessions struct {
	mu    sync.Mutex
	byTok *lru.Cache[[32]byte, *session] // by the SHA-256 of the cookie's token
	now   func() time.Time
}

// session is one sign-in.
type session struct {
	key     [32]byte // apikey.Digest of the key
	csrf    string   // the token every form and POST of the session carries
	created time.Time
	seen    time.Time
}

// NewSessions returns an empty store.
func NewSessions() *Sessions {
	return &Sessions{byTok: lru.New[[32]byte, *session](maxSessions, metrics.Bounded("ui_sessions", "")), now: time.Now}
}

// create makes a session for the key with digest key and returns the
// cookie's token.
func (s *Sessions) create(key [32]byte) (token string, sess *session) {
	token = randomToken()
	now := s.now()
	sess = &session{key: key, csrf: randomToken(), created: now, seen: now}
	s.mu.Lock()
	s.byTok.Add(sha256.Sum256([]byte(token)), sess)
	s.mu.Unlock()
	return token, sess
}

// get returns the live session of token, marking it used, or nil; an
// expired one is removed.
func (s *Sessions) get(token string) *session {
	if token == "" || len(token) > 128 {
		return nil
	}
	id := sha256.Sum256([]byte(token))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byTok.Get(id)
	if !ok {
		return nil
	}
	if now.Sub(sess.seen) > sessionIdle || now.Sub(sess.created) > sessionMax {
		s.byTok.Remove(id)
		return nil
	}
	sess.seen = now
	return sess
}

// end removes the session of token.
func (s *Sessions) end(token string) {
	s.mu.Lock()
	s.byTok.Remove(sha256.Sum256([]byte(token)))
	s.mu.Unlock()
}

// csrfOK compares a presented CSRF token with the session's in constant
// time.
func (s *session) csrfOK(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionCookie is the cookie of a new session, or one that ends it
// (token ""). It lives until the session's longest life; the server ends
// it sooner when idle.
func sessionCookie(r *http.Request, token string) *http.Cookie {
	c := &http.Cookie{Name: cookieName, Value: token, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionMax / time.Second)}
	if token == "" {
		c.MaxAge = -1
	}
	return c
}
