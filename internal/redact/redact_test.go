package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "remote_password": true, "bearer_token": true, "api_key": true, "api_keys": true,
		"Cookie": true, "Authorization": true, "client_secret": true, "key": true, "passwd": true,
		"name": false, "url": false, "key_file": false, "keep_alive": false, "monkey_id": false,
	} {
		if SecretKey(k) != want {
			t.Errorf("SecretKey(%q) = %v", k, !want)
		}
	}
}

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://u:pw@api.example/v1/state?token=abc&x=1#frag": "https://api.example/v1/state",
		"http://h:8080/p":  "http://h:8080/p",
		"http://h/p?":      "http://h/p",
		"%zz://bad":        Mask,
		"https://h/?s=a%x": "https://h/",
	} {
		if got := URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestQueryValues(t *testing.T) {
	got, ok := QueryValues("https://u:pw@api.example/v1?token=abc&page=2&flag")
	if !ok || got != "https://u:***@api.example/v1?token=***&page=***&flag=***" {
		t.Errorf("got %q %v", got, ok)
	}
	if got, _ := QueryValues("https://fleet.example/{gateway}.json?sig=x#f"); got != "https://fleet.example/{gateway}.json?sig=***#***" {
		t.Errorf("template URL: %q", got)
	}
	if got, ok := QueryValues("telemetry/#"); ok || got != "telemetry/#" {
		t.Errorf("not a URL: %q %v", got, ok)
	}
}

func TestSecretsAndScrub(t *testing.T) {
	var doc any
	json.Unmarshal([]byte(`{
		"broker": {"username": "gw", "password": "pw-canary-1", "bridge": {"password": "pw-canary-2"}},
		"api_keys": [{"name": "plant", "sha256": "abcd"}],
		"headers": {"Accept": "application/json", "Cookie": "session=cookie-canary-3", "X-Api-Key": "hdr-canary-4"},
		"url": "https://api.example/x?token=query-canary-5",
		"auth": {"type": "bearer", "token": "bearer-canary-6"},
		"tokens": ["list-canary-7"]
	}`), &doc)
	got := Secrets(doc)
	for _, want := range []string{"pw-canary-1", "pw-canary-2", "session=cookie-canary-3", "hdr-canary-4", "query-canary-5", "bearer-canary-6", "list-canary-7"} {
		if !slices.Contains(got, want) {
			t.Errorf("Secrets lacks %q: %q", want, got)
		}
	}
	for _, not := range []string{"gw", "plant", "abcd", "application/json", "bearer"} {
		if slices.Contains(got, not) {
			t.Errorf("Secrets has %q, which is no secret", not)
		}
	}
	text := `broker: value "pw-canary-1\n" spans lines; cookie session=cookie-canary-3 and query-canary-5`
	if s := Scrub(text, got); s != `broker: value "***\n" spans lines; cookie *** and ***` {
		t.Errorf("Scrub: %q", s)
	}
	if s := Scrub("on and 1", []string{"on", "1"}); s != "on and 1" {
		t.Errorf("short values scrubbed: %q", s)
	}
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewTextHandler(&buf, nil))
	log := slog.New(h).With("connector", "web")
	h.SetSecrets([]string{"hunter22"})
	log.Warn("login hunter22 failed", "err", errors.New("bad password hunter22"), "url", "x?p=hunter22",
		slog.Group("g", "k", "hunter22"), "list", []string{"a", "hunter22"}, "n", 5)
	if s := buf.String(); strings.Contains(s, "hunter22") || !strings.Contains(s, "connector=web") || !strings.Contains(s, "n=5") {
		t.Errorf("logged: %s", s)
	}
}

func TestClip(t *testing.T) {
	for _, c := range []struct {
		s    string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer text", 8, "a longer…"},
		{strings.Repeat("é", 10), 5, "éé…"}, // no character split
		{"ab\xffcdefgh", 6, "abcde…"},       // invalid UTF-8 dropped
	} {
		if got := Clip(c.s, c.max); got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.s, c.max, got, c.want)
		}
	}
}
