// Package redact keeps secrets out of what osgate shows: logs, errors,
// status fields and RPC answers. One set of rules for every package:
// which keys name secrets, which headers carry credentials, how a URL is
// shown, and how known secret values are cut out of a text.
package redact

import (
	"net/url"
	"sort"
	"strings"
)

// Mask replaces a secret.
const Mask = "***"

// minSecret is the shortest value Scrub replaces: shorter ones ("1", "on")
// would mangle unrelated text and are no secret worth the name.
const minSecret = 4

// SecretKey says whether a JSON key names a secret: password, passwd,
// secret, token, cookie, authorization, or a name ending in "key" or
// "keys" (api_key, api_keys, key).
func SecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "secret", "token", "cookie", "authorization"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return strings.HasSuffix(k, "key") || strings.HasSuffix(k, "keys")
}

// harmlessHeaders are the request headers whose values are shown; every
// other configured header (Cookie, X-Api-Key, a vendor's token header) is
// masked: a header is how credentials are usually sent.
var harmlessHeaders = map[string]bool{
	"accept": true, "accept-language": true, "accept-encoding": true,
	"content-type": true, "user-agent": true, "cache-control": true,
}

// SecretHeader says whether a configured header's value is masked.
func SecretHeader(name string) bool { return !harmlessHeaders[strings.ToLower(name)] }

// URL returns raw without user info, query and fragment, for errors and
// logs: a token in a query or a password in a URL is never shown. Text
// that does not parse as a URL is masked whole.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Mask
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	u.ForceQuery = false
	return u.String()
}

// QueryValues returns raw with every query value and the password of its
// user info masked, keeping the names and the rest as written, for showing
// a configuration. It reports false when raw is no URL with a scheme and a
// host (then it is returned unchanged).
func QueryValues(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return raw, false
	}
	rest, frag, hasFrag := strings.Cut(raw, "#")
	base, query, hasQuery := strings.Cut(rest, "?")
	if _, has := u.User.Password(); has {
		// scheme://user:password@host...: the password ends at the last
		// "@" of the authority.
		scheme, after, _ := strings.Cut(base, "://")
		auth, path, hasPath := strings.Cut(after, "/")
		at := strings.LastIndex(auth, "@")
		if user, _, ok := strings.Cut(auth[:max(at, 0)], ":"); ok && at > 0 {
			auth = user + ":" + Mask + auth[at:]
		}
		base = scheme + "://" + auth
		if hasPath {
			base += "/" + path
		}
	}
	out := base
	if hasQuery {
		parts := strings.Split(query, "&")
		for i, p := range parts {
			name, _, _ := strings.Cut(p, "=")
			parts[i] = name + "=" + Mask
		}
		out += "?" + strings.Join(parts, "&")
	}
	if hasFrag && frag != "" {
		out += "#" + Mask
	}
	return out, true
}

// Scrub replaces every occurrence of each secret (of at least 4 bytes) in
// text by Mask, longest first, so a secret that contains another is cut
// whole.
func Scrub(text string, secrets []string) string {
	if len(secrets) == 0 || text == "" {
		return text
	}
	ss := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if len(s) >= minSecret {
			ss = append(ss, s)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return len(ss[i]) > len(ss[j]) })
	for _, s := range ss {
		if strings.Contains(text, s) {
			text = strings.ReplaceAll(text, s, Mask)
		}
	}
	return text
}

// Secrets collects the secret values in a decoded JSON value: the values
// of secret keys (strings, or the strings in their arrays and objects),
// of configured headers, the query values and passwords of URLs. Scrub
// takes them out of a text about that document.
func Secrets(v any) []string {
	var out []string
	collect(v, false, &out)
	return out
}

func collect(v any, secret bool, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		// Under a secret key, an object's members are judged by their own
		// keys: api_keys holds names and hashes, not secrets.
		for k, el := range x {
			switch {
			case SecretKey(k):
				collect(el, true, out)
			case strings.EqualFold(k, "headers"):
				if h, ok := el.(map[string]any); ok {
					for name, hv := range h {
						collect(hv, SecretHeader(name), out)
					}
				}
			default:
				collect(el, false, out)
			}
		}
	case []any:
		for _, el := range x {
			collect(el, secret, out) // a list of secrets
		}
	case string:
		if secret {
			*out = append(*out, x)
			return
		}
		if u, err := url.Parse(x); err == nil && u.Scheme != "" && u.Host != "" {
			if pw, ok := u.User.Password(); ok {
				*out = append(*out, pw)
			}
			for _, vs := range u.Query() {
				*out = append(*out, vs...)
			}
			if u.RawQuery != "" {
				*out = append(*out, u.RawQuery)
			}
		}
	}
}

// Clip bounds a text shown in a log line, an error or a status field (a
// device's reason, a payload quoted in an error): up to max bytes, cut
// where no character is split and with invalid UTF-8 dropped, and "…"
// where it was cut. A text of max bytes or less is returned as it is.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
