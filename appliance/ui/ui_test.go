package ui

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

// These tests serve the pages from a real rpc.Server with the keys they
// name; its methods here are small stand-ins for the gateway's (a write
// that records who called it): the whole gateway against a real device
// and a real browser is drivers/modbus's TestTechnicianPages.

const (
	writeKey = "ui-test-write-key-0123456789"
	readKey  = "ui-test-read-key-0123456789"
)

// site is the pages on a test server, with what their methods saw.
type site struct {
	srv      *httptest.Server
	logs     *testpeer.Buffer
	sessions *Sessions
	mu       sync.Mutex
	writes   []string // caller: params of each device.write
}

func newSite(t *testing.T, keys []apikey.Key, sessions *Sessions) *site {
	t.Helper()
	st := &site{logs: &testpeer.Buffer{}, sessions: sessions}
	if st.sessions == nil {
		st.sessions = NewSessions()
	}
	log := slog.New(slog.NewTextHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := rpc.New(rpc.Options{Keys: keys, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.Register("device.write", scope.Write, func(ctx context.Context, params json.RawMessage) (any, error) {
		st.mu.Lock()
		st.writes = append(st.writes, rpc.Caller(ctx)+": "+string(params))
		st.mu.Unlock()
		var p struct {
			Device, Channel string
			Value           any
		}
		json.Unmarshal(params, &p)
		return map[string]any{"device": p.Device, "channel": p.Channel, "written": p.Value}, nil
	})
	s.Register("devices.list", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		return []map[string]any{{"name": "meter-1", "connector": "bus", "type": "modbus", "state": "online", "since": time.Now().UTC().Format(time.RFC3339)}}, nil
	})
	s.Register("connectors.list", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		return []map[string]any{{"name": "bus", "type": "modbus", "kind": "poller", "devices": 1}}, nil
	})
	s.Register("devices.values", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		return []map[string]any{{"device": "meter-1", "connector": "bus", "channels": []map[string]any{
			{"channel": "setpoint", "unit": "°C", "writable": true, "value": 21.5, "quality": "good"}}}}, nil
	})
	s.Route("/ui/", New(Options{RPC: s, Sessions: st.sessions, Logger: log.With("part", "ui")}))
	st.srv = httptest.NewServer(s.Handler())
	t.Cleanup(st.srv.Close)
	return st
}

func keys() []apikey.Key {
	return []apikey.Key{{Name: "tech", SHA256: apikey.Hash(writeKey), Scope: "write"},
		{Name: "viewer", SHA256: apikey.Hash(readKey), Scope: "read"}}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects (the tests look at them).
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func post(t *testing.T, c *http.Client, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs c in with key and returns the session cookie.
func signIn(t *testing.T, st *site, c *http.Client, key string) *http.Cookie {
	t.Helper()
	resp, body := post(t, c, st.srv.URL+"/ui/login", url.Values{"key": {key}, "next": {"/ui/devices"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/devices" {
		t.Fatalf("sign-in: %s, Location %q\n%s", resp.Status, resp.Header.Get("Location"), body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			return ck
		}
	}
	t.Fatalf("sign-in set no %s cookie: %v", cookieName, resp.Header["Set-Cookie"])
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token of a signed-in page's forms.
func csrf(t *testing.T, st *site, c *http.Client) string {
	t.Helper()
	resp, body := get(t, c, st.srv.URL+"/ui/devices/meter-1")
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("device page: %s, no CSRF token:\n%s", resp.Status, body)
	}
	return m[1]
}

func TestSignIn(t *testing.T) {
	st := newSite(t, keys(), nil)
	c := browser(t)

	// Not signed in: pages lead to the sign-in form, scripts get 401.
	resp, _ := get(t, c, st.srv.URL+"/ui/devices")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Fdevices" {
		t.Errorf("devices without a sign-in: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := get(t, c, st.srv.URL+"/ui/events"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("events without a sign-in: %s", resp.Status)
	}

	// A wrong key: refused, no cookie, and the key is in no log line.
	const wrong = "not-a-key-of-this-gateway-42"
	resp, body := post(t, c, st.srv.URL+"/ui/login", url.Values{"key": {wrong}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "not accepted") {
		t.Errorf("wrong key: %s, cookies %v\n%s", resp.Status, resp.Cookies(), body)
	}

	ck := signIn(t, st, c, writeKey)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui/" || ck.MaxAge <= 0 || ck.MaxAge > int(sessionMax/time.Second) || len(ck.Value) < 40 {
		t.Errorf("session cookie: %+v", ck)
	}
	resp, body = get(t, c, st.srv.URL+"/ui/devices")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "meter-1") || !strings.Contains(body, "21.5 °C") {
		t.Errorf("devices signed in: %s\n%s", resp.Status, body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}

	// Signing out ends the session on the server, not just the cookie.
	token := csrf(t, st, c)
	resp, _ = post(t, c, st.srv.URL+"/ui/logout", url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out: %s", resp.Status)
	}
	stolen := browser(t)
	u, _ := url.Parse(st.srv.URL + "/ui/")
	stolen.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: ck.Value}})
	if resp, _ := get(t, stolen, st.srv.URL+"/ui/devices"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the cookie of an ended session still works: %s", resp.Status)
	}

	logs := st.logs.String()
	for _, secret := range []string{writeKey, wrong, ck.Value, token} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret %q is in the log:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `msg="ui: signed in" part=ui caller=tech scope=write`) || !strings.Contains(logs, `reason="unknown API key"`) {
		t.Errorf("sign-in and the refused key are not logged:\n%s", logs)
	}
}

// TestActions: a write key writes after a confirmation, in its own name
// through device.write; a read key cannot; a form without the session's
// token or from another site is refused.
func TestActions(t *testing.T) {
	st := newSite(t, keys(), nil)
	c := browser(t)
	signIn(t, st, c, writeKey)
	token := csrf(t, st, c)
	act := st.srv.URL + "/ui/act"
	form := url.Values{"action": {"write"}, "device": {"meter-1"}, "channel": {"setpoint"}, "kind": {"number"}, "value": {"22.5"}, "back": {"/ui/devices/meter-1"}}

	// First the confirmation: nothing is written yet.
	form.Set("csrf", token)
	resp, body := post(t, c, act, form, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="confirm" value="yes"`) || len(st.writes) != 0 {
		t.Fatalf("write without confirm: %s, writes %v\n%s", resp.Status, st.writes, body)
	}
	for name, tc := range map[string]struct {
		token string
		hdr   map[string]string
	}{
		"no token":      {"", nil},
		"another token": {"x" + token, nil},
		"other origin":  {token, map[string]string{"Origin": "http://evil.example"}},
		"cross-site":    {token, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("confirm", "yes")
		f.Set("csrf", tc.token)
		if resp, body := post(t, c, act, f, tc.hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s\n%s", name, resp.Status, body)
		}
	}
	if len(st.writes) != 0 {
		t.Fatalf("a refused form wrote: %v", st.writes)
	}
	form.Set("confirm", "yes")
	resp, body = post(t, c, act, form, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Wrote <strong>22.5</strong>") {
		t.Errorf("confirmed write: %s\n%s", resp.Status, body)
	}
	if want := `tech: {"channel":"setpoint","device":"meter-1","value":22.5}`; len(st.writes) != 1 || st.writes[0] != want {
		t.Errorf("device.write calls: %q, want [%q]", st.writes, want)
	}
	if logs := st.logs.String(); !strings.Contains(logs, `msg="rpc: write call" method=device.write scope=write caller=tech`) {
		t.Errorf("the write is not logged with the key's name:\n%s", logs)
	}

	// A read key sees the page and is told it may not act.
	rc := browser(t)
	signIn(t, st, rc, readKey)
	rtoken := csrf(t, st, rc)
	if _, body := get(t, rc, st.srv.URL+"/ui/devices/meter-1"); !strings.Contains(body, "scope <strong>read</strong>: you can look") {
		t.Errorf("the read key's page does not say it cannot act:\n%s", body)
	}
	form.Set("csrf", rtoken)
	resp, body = post(t, rc, act, form, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Not allowed:") || len(st.writes) != 1 {
		t.Errorf("read key writes: %s, writes %v\n%s", resp.Status, st.writes, body)
	}
	// A token is one session's: the write key's token fails for the read key.
	form.Set("csrf", token)
	if resp, _ := post(t, rc, act, form, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session's token: %s", resp.Status)
	}
}

// TestSessionFollowsKeys: sessions outlive one gateway (the supervisor
// keeps them), but a key that left the configuration signs its sessions
// out, and a key whose scope changed acts with the new scope.
func TestSessionFollowsKeys(t *testing.T) {
	sessions := NewSessions()
	old := newSite(t, keys(), sessions)
	c := browser(t)
	signIn(t, old, c, writeKey)
	signIn(t, old, browser(t), readKey)

	// The next configuration: the write key is now read-only, the read key is gone.
	next := newSite(t, []apikey.Key{{Name: "tech", SHA256: apikey.Hash(writeKey), Scope: "read"}}, sessions)
	u, _ := url.Parse(next.srv.URL + "/ui/")
	for _, ck := range c.Jar.Cookies(mustURL(t, old.srv.URL+"/ui/")) {
		c.Jar.SetCookies(u, []*http.Cookie{ck})
	}
	resp, body := get(t, c, next.srv.URL+"/ui/devices/meter-1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "scope <strong>read</strong>") {
		t.Errorf("session after its key became read-only: %s\n%s", resp.Status, body)
	}
	gone := browser(t)
	signIn(t, old, gone, readKey)
	for _, ck := range gone.Jar.Cookies(mustURL(t, old.srv.URL+"/ui/")) {
		gone.Jar.SetCookies(u, []*http.Cookie{ck})
	}
	if resp, _ := get(t, gone, next.srv.URL+"/ui/devices"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a removed key: %s", resp.Status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSessionBounds: a session ends when idle, at its longest life, and
// the store keeps at most maxSessions, ending the least recently used.
func TestSessionBounds(t *testing.T) {
	s := NewSessions()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	key := keyDigest(writeKey)

	idle, _ := s.create(key)
	now = now.Add(sessionIdle + time.Second)
	if s.get(idle) != nil {
		t.Error("an idle session lives on")
	}

	long, _ := s.create(key)
	for range int(sessionMax/sessionIdle) + 1 {
		now = now.Add(sessionIdle - time.Minute)
		s.get(long)
	}
	if s.get(long) != nil {
		t.Errorf("a session in use lives past %v", sessionMax)
	}

	first, _ := s.create(key)
	var last string
	for range maxSessions {
		last, _ = s.create(key)
	}
	if s.get(first) != nil || s.get(last) == nil {
		t.Errorf("store of %d: the oldest lives on or the newest is gone", maxSessions)
	}
	if s.get("") != nil || s.get(strings.Repeat("x", 200)) != nil {
		t.Error("an empty or long token finds a session")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/devices":          "/ui/devices",
		"/ui/devices/m?x=1":    "/ui/devices/m?x=1",
		"":                     "/ui/",
		"https://evil.example": "/ui/",
		"//evil.example/ui/":   "/ui/",
		"/ui//evil.example":    "/ui/",
		"/ui/\\evil":           "/ui/",
		"/ui/login?next=/ui/":  "/ui/",
		"/metrics":             "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/devices", "//x", "/ui/\\x", "http://x/ui/", "/ui/%2F%2Fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/ui/") || strings.HasPrefix(got, "//") {
			t.Errorf("safeNext(%q) = %q leaves these pages", s, got)
		}
	})
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"1", "-2.5e3", "true", "off", "abc", " 7 ", "NaN", ""} {
		for _, k := range []string{"number", "bool", "text", "auto"} {
			f.Add(s, k)
		}
	}
	f.Fuzz(func(t *testing.T, s, kind string) {
		v, err := parseValue(s, kind)
		if err != nil {
			if len(err.Error()) > 400 { // the text is quoted, at most 32 characters of it
				t.Errorf("parseValue(%q, %q): error too long: %v", s, kind, err)
			}
			return
		}
		switch kind {
		case "number":
			if _, ok := v.(float64); !ok {
				t.Errorf("parseValue(%q, number) = %T", s, v)
			}
		case "bool":
			if _, ok := v.(bool); !ok {
				t.Errorf("parseValue(%q, bool) = %T", s, v)
			}
		}
		if _, err := json.Marshal(map[string]any{"v": v}); err != nil {
			t.Errorf("parseValue(%q, %q) = %v: not JSON: %v", s, kind, v, err)
		}
	})
}

// TestAssetsSmall: everything a browser loads besides the page itself
// is embedded and well under the budget (300 KB with the pages).
func TestAssetsSmall(t *testing.T) {
	total := 0
	assets, _ := staticAssets()
	for name, a := range assets {
		total += len(a.body)
		if len(a.gz) == 0 {
			t.Errorf("%s: no gzip form", name)
		}
	}
	if total == 0 || total > 100<<10 {
		t.Errorf("embedded assets: %d bytes, want 1..%d", total, 100<<10)
	}
	st := newSite(t, keys(), nil)
	c := browser(t)
	signIn(t, st, c, writeKey)
	for _, p := range []string{"/ui/", "/ui/devices", "/ui/commission", "/ui/logs"} {
		resp, body := get(t, c, st.srv.URL+p)
		if len(body)+total > 300<<10 {
			t.Errorf("%s: %d bytes with the assets", p, len(body)+total)
		}
		for _, ext := range []string{"http://", "https://"} {
			if i := strings.Index(body, ext); i >= 0 && !strings.Contains(body[i:i+40], "www.w3.org/2000/svg") {
				t.Errorf("%s (%s) links outside the gateway: %s", p, resp.Status, body[i:min(len(body), i+60)])
			}
		}
	}
}
