package source

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/tlsconf"
)

// RemoteSettings is the "remote" block of the local bootstrap file: where
// the gateway pulls its configuration from and how it checks it. It is only
// ever read from the local file; a pulled document cannot change where
// configuration comes from or which key signs it.
type RemoteSettings struct {
	// URL of the gateway's document; {gateway} is replaced by the gateway
	// id, e.g. "https://fleet.example/gateways/{gateway}.json".
	URL string `json:"url" strict:"required"`
	// SignatureURL is where the detached signature is (default: URL +
	// ".sig"); {gateway} is replaced too.
	SignatureURL string `json:"signature_url"`
	// Interval between pulls (default "5m", at least "1s").
	Interval time.Duration `json:"interval"`
	// Timeout of one pull, document and signature together (default
	// "30s").
	Timeout time.Duration `json:"timeout"`
	// TLS settings of the connection to the fleet server
	// (internal/tlsconf): ca_file (default: the system's CAs), a client
	// certificate, server_name, insecure, and "tls" to say which the URL
	// must be.
	tlsconf.Client
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken string `json:"bearer_token"`
	// PublicKey is the base64 ed25519 public key (32 bytes) that signs
	// the documents. When set, an unsigned or badly signed document is
	// refused. Required for an http:// URL.
	PublicKey string `json:"public_key"`
}

const (
	defaultInterval = 5 * time.Minute
	defaultTimeout  = 30 * time.Second
	minInterval     = time.Second
)

var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// ParseRemote decodes a "remote" object strictly and validates it. Errors
// are a strict.Errors with paths relative to the object.
func ParseRemote(data []byte) (*RemoteSettings, error) {
	r := &RemoteSettings{}
	if err := strict.Decode(data, r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Validate reports every problem of r as a strict.Errors with paths
// relative to the "remote" object (e.g. "interval", "public_key").
func (r *RemoteSettings) Validate() error {
	var es strict.Errors
	validURL(&es, "url", r.URL, r.PublicKey != "")
	if r.SignatureURL != "" {
		validURL(&es, "signature_url", r.SignatureURL, r.PublicKey != "")
	}
	if r.Interval < 0 || r.Interval > 0 && r.Interval < minInterval {
		es.Add("interval", "must be at least %s, not %s", minInterval, r.Interval)
	}
	if r.Timeout < 0 {
		es.Add("timeout", "must be positive, not %s", r.Timeout)
	}
	r.Check(&es, "")
	checked := map[string]bool{} // "tls" against the schemes of the URLs
	for _, u := range []string{r.URL, r.SignatureURL} {
		if p, err := url.Parse(u); err == nil && (p.Scheme == "https" || p.Scheme == "http") && !checked[p.Scheme] {
			checked[p.Scheme] = true
			r.CheckScheme(&es, "", p.Scheme, p.Scheme == "https", "https://", "http://")
		}
	}
	if strings.ContainsAny(r.BearerToken, "\r\n") {
		es.Add("bearer_token", "must not contain a line break")
	}
	if r.PublicKey != "" {
		if _, err := sign.ParsePublicKey(r.PublicKey); err != nil {
			es.Add("public_key", "%v", err)
		}
	}
	return es.Err()
}

func validURL(es *strict.Errors, path, raw string, signed bool) {
	if raw == "" {
		es.Add(path, "is required")
		return
	}
	for _, p := range placeholder.FindAllString(raw, -1) {
		if p != "{gateway}" {
			es.Add(path, "unknown placeholder %s (known: {gateway})", p)
			return
		}
	}
	u, err := url.Parse(expand(raw, "gw"))
	if err != nil {
		es.Add(path, "is not a URL: %v", err)
		return
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		es.Add(path, "must be an https:// (or, with public_key, http://) URL, not %q", raw)
	case u.Host == "":
		es.Add(path, "has no host: %q", raw)
	case u.Scheme == "http" && !signed:
		es.Add(path, "is plain http: set public_key so documents are signed, or use https")
	}
}

// expand fills the {gateway} placeholder of a URL template.
func expand(tmpl, gateway string) string {
	return strings.ReplaceAll(tmpl, "{gateway}", url.PathEscape(gateway))
}

func (r *RemoteSettings) interval() time.Duration {
	if r.Interval == 0 {
		return defaultInterval
	}
	return r.Interval
}

func (r *RemoteSettings) timeout() time.Duration {
	if r.Timeout == 0 {
		return defaultTimeout
	}
	return r.Timeout
}

func (r *RemoteSettings) signatureURL() string {
	if r.SignatureURL == "" {
		return r.URL + ".sig"
	}
	return r.SignatureURL
}
