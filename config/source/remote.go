package source

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
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
	// CAFile is a PEM bundle of the CAs trusted for the fleet server
	// (default: the system's).
	CAFile string `json:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
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
	if (r.CertFile == "") != (r.KeyFile == "") {
		if r.CertFile == "" {
			es.Add("cert_file", "is required with key_file")
		} else {
			es.Add("key_file", "is required with cert_file")
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
