package http

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/tlsconf"
)

// settings is the connector's "settings" object. With "ingest" the
// connector is a listener serving POSTs; without it, a poller of its
// devices' URLs.
type settings struct {
	Ingest *ingestSettings `json:"ingest"`
	// OnlyConfigured (ingest) drops and counts readings of devices, and of
	// channels of devices with channels, that are not configured.
	OnlyConfigured bool `json:"only_configured"`

	// Poll defaults, which a device's own keys override.
	Headers map[string]string `json:"headers"`
	Auth    *authSettings     `json:"auth"`
	// TLS settings of the polls (internal/tlsconf), for every https:// URL.
	tlsconf.Client
	// MaxBody bounds a response body in bytes (default 1 MiB).
	MaxBody int64 `json:"max_body"`
}

// ingestKey is one accepted ingest key: a name and the key's SHA-256. It
// has no scope: an ingest key may post readings and nothing else.
type ingestKey struct {
	Name   string `json:"name" strict:"required"`
	SHA256 string `json:"sha256" strict:"required"`
}

// ingestSettings configure the POST endpoint.
type ingestSettings struct {
	// Listen is the address to serve on (default "127.0.0.1:8081").
	Listen string `json:"listen"`
	// APIKeys are the accepted keys as SHA-256 digests, checked exactly as
	// the RPC service checks its keys; at least one is required.
	APIKeys []ingestKey `json:"api_keys" strict:"required"`
	// CertFile and KeyFile turn TLS on.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// MaxBody bounds a request body in bytes (default 1 MiB).
	MaxBody int64 `json:"max_body"`
	// MaxChannels bounds the readings of one request (default 10000).
	MaxChannels int `json:"max_channels"`
	// Mappings map a URL path to readings, like the MQTT connector's
	// topics; default: POST /ingest/{device} with every member of the JSON
	// object a channel and "ts" (RFC 3339) as its time.
	Mappings []ingestMapping `json:"mappings"`
}

type ingestMapping struct {
	Path string          `json:"path" strict:"required"`
	Rest json.RawMessage `strict:"rest"`
}

// authSettings are the credentials a poller sends.
type authSettings struct {
	// Type is "basic" or "bearer".
	Type     string `json:"type" strict:"required"`
	Username string `json:"username"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// deviceSettings are a polled device's own keys.
type deviceSettings struct {
	URL     string            `json:"url" strict:"required"`
	Headers map[string]string `json:"headers"`
	Auth    *authSettings     `json:"auth"`
	Time    *mapping.TimeSpec `json:"time"`
}

// channelSettings are a polled channel's own keys.
type channelSettings struct {
	Path string       `json:"path" strict:"required"`
	Type mapping.Type `json:"type"`
}

const (
	defaultMaxBody = 1 << 20
	// maxMaxBody and maxMaxChannels are the most max_body and
	// max_channels may be set to: a request is held in memory whole.
	maxMaxBody     = 64 << 20
	maxMaxChannels = 1000000
)

func parseSettings(raw json.RawMessage) (settings, strict.Errors) {
	var es strict.Errors
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var s settings
	es.Merge("settings", strict.Decode(raw, &s))
	if s.MaxBody == 0 {
		s.MaxBody = defaultMaxBody
	} else if s.MaxBody < 0 || s.MaxBody > maxMaxBody {
		es.Add("settings.max_body", "must be from 1 to %d bytes", maxMaxBody)
	}
	if s.Auth != nil {
		es.Merge("settings.auth", checkAuth(*s.Auth).Err())
	}
	es.Merge("settings.headers", checkHeaders(s.Headers).Err())
	s.Check(&es, "settings")
	return s, es
}

// ingestConfig is a checked ingestSettings.
type ingestConfig struct {
	listen            string
	keys              *apikey.Set
	certFile, keyFile string
	maxBody           int64
	set               *mapping.Set
}

// defaultIngest is the mapping used when ingest lists none.
const defaultIngestPath = "/ingest/{device}"

func parseIngest(s settings, devices []*core.Device) (*ingestConfig, strict.Errors) {
	var es strict.Errors
	in := s.Ingest
	ic := &ingestConfig{listen: in.Listen, certFile: in.CertFile, keyFile: in.KeyFile, maxBody: in.MaxBody}
	if ic.listen == "" {
		ic.listen = "127.0.0.1:8081"
	}
	if _, _, err := net.SplitHostPort(ic.listen); err != nil {
		es.Add("settings.ingest.listen", "%q is not HOST:PORT: %v", ic.listen, err)
	}
	if ic.maxBody == 0 {
		ic.maxBody = defaultMaxBody
	} else if ic.maxBody < 0 || ic.maxBody > maxMaxBody {
		es.Add("settings.ingest.max_body", "must be from 1 to %d bytes", maxMaxBody)
	}
	if in.MaxChannels < 0 || in.MaxChannels > maxMaxChannels {
		es.Add("settings.ingest.max_channels", "must be from 1 to %d", maxMaxChannels)
	}
	if (in.CertFile == "") != (in.KeyFile == "") {
		es.Add("settings.ingest.key_file", "cert_file and key_file go together")
	}
	akeys := make([]apikey.Key, len(in.APIKeys))
	for i, k := range in.APIKeys {
		akeys[i] = apikey.Key{Name: k.Name, SHA256: k.SHA256}
	}
	keys, err := apikey.New(akeys)
	es.Merge("settings.ingest.api_keys", err)
	if err == nil && keys.Len() == 0 {
		es.Add("settings.ingest.api_keys", "must list at least one key: the endpoint is never open to anyone (osgate rpc hash-key makes the digest)")
	}
	ic.keys = keys
	pollKeys := []struct {
		key string
		set bool
	}{
		{"auth", s.Auth != nil}, {"headers", len(s.Headers) > 0}, {"tls", s.TLS != nil},
		{"ca_file", s.CAFile != ""}, {"cert_file", s.CertFile != ""}, {"key_file", s.KeyFile != ""},
		{"server_name", s.ServerName != ""}, {"insecure", s.Insecure},
	}
	for _, k := range pollKeys {
		if k.set {
			es.Add("settings."+k.key, "is for polling; this connector ingests (settings.ingest is set)")
		}
	}
	mappings := in.Mappings
	if len(mappings) == 0 {
		mappings = []ingestMapping{{Path: defaultIngestPath, Rest: json.RawMessage(`{"time":{"path":"ts"},"channels":[{"each":""}]}`)}}
	}
	var compiled []*mapping.Mapping
	for i, im := range mappings {
		at := strict.Index("settings.ingest.mappings", i)
		if !strings.HasPrefix(im.Path, "/") {
			es.Add(at+".path", "%q must start with \"/\"", im.Path)
			continue
		}
		f, err := mapping.ParseFilter(strings.TrimPrefix(im.Path, "/"))
		if err != nil {
			es.Add(at+".path", "%v", err)
			continue
		}
		var spec mapping.Spec
		es.Merge(at, strict.WithKeys(strict.Decode(im.Rest, &spec), strict.Keys(ingestMapping{})...))
		m, err := mapping.Compile(f, spec, mapping.Options{MaxReadings: in.MaxChannels})
		es.Merge(at, err)
		if m != nil {
			compiled = append(compiled, m)
		}
	}
	cat, err := mapping.NewCatalog(devices, s.OnlyConfigured)
	es.Merge("", err)
	ic.set = mapping.NewSet(compiled, cat)
	return ic, es
}

// pollDevice is a checked polled device.
type pollDevice struct {
	name    string
	url     string
	display string // the URL without credentials or query, for errors
	scheme  string // "http" or "https"
	headers map[string]string
	auth    *authSettings
	mapping *mapping.Mapping
	// secrets are what the device sends as credentials: cut out of what
	// a server answers before it is shown.
	secrets []string
}

func parseDevice(s settings, d *core.Device) (*pollDevice, strict.Errors) {
	var es strict.Errors
	var ds deviceSettings
	raw := d.Settings
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	es.Merge("", strict.Decode(raw, &ds))
	pd := &pollDevice{name: d.Name, url: ds.URL, headers: map[string]string{}, auth: s.Auth}
	if ds.URL != "" {
		u, err := url.Parse(ds.URL)
		switch {
		case err != nil:
			es.Add("url", "is not a URL") // the error would show the query
		case u.Scheme != "http" && u.Scheme != "https":
			es.Add("url", "%q must be http:// or https://", redact.URL(ds.URL))
		case u.Host == "":
			es.Add("url", "%q has no host", redact.URL(ds.URL))
		default:
			pd.display = redact.URL(ds.URL)
			if u.User != nil {
				es.Add("url", "must not carry credentials: use auth")
			}
			pd.scheme = u.Scheme
		}
	}
	for k, v := range s.Headers {
		pd.headers[k] = v
	}
	es.Merge("headers", checkHeaders(ds.Headers).Err())
	for k, v := range ds.Headers {
		pd.headers[k] = v
	}
	if ds.Auth != nil {
		es.Merge("auth", checkAuth(*ds.Auth).Err())
		pd.auth = ds.Auth
	}
	if pd.auth != nil {
		pd.secrets = append(pd.secrets, pd.auth.Password, pd.auth.Token)
	}
	for k, v := range pd.headers {
		if redact.SecretHeader(k) {
			pd.secrets = append(pd.secrets, v)
		}
	}
	if u, err := url.Parse(ds.URL); err == nil && u.RawQuery != "" {
		pd.secrets = append(pd.secrets, u.RawQuery)
		for _, vs := range u.Query() {
			pd.secrets = append(pd.secrets, vs...)
		}
	}
	spec := mapping.Spec{Time: ds.Time}
	if len(d.Channels) == 0 {
		es.Add("channels", "must list at least one channel, each with the path of its value in the response")
	}
	for j, ch := range d.Channels {
		at := strict.Index("channels", j)
		var cs channelSettings
		chRaw := ch.Settings
		if len(chRaw) == 0 {
			chRaw = json.RawMessage("{}")
		}
		es.Merge(at, strict.Decode(chRaw, &cs))
		name := ch.Name
		if strings.ContainsAny(name, "{}") {
			es.Add(at+".name", "%q: a polled channel's name cannot contain { or }", name)
			name = "invalid" // keeps the channel indexes of later errors right
		}
		spec.Channels = append(spec.Channels, mapping.ChannelSpec{Name: name, Path: cs.Path, Type: cs.Type, Unit: ch.Unit})
	}
	if len(spec.Channels) > 0 {
		m, err := mapping.Compile(nil, spec, mapping.Options{Device: d.Name, AbsentIsBad: true})
		es.Merge("", err)
		pd.mapping = m
	}
	return pd, es
}

func checkAuth(a authSettings) strict.Errors {
	var es strict.Errors
	switch a.Type {
	case "basic":
		if a.Username == "" {
			es.Add("username", "is required for basic auth")
		}
		if a.Token != "" {
			es.Add("token", "is for bearer auth, not basic")
		}
	case "bearer":
		if a.Token == "" {
			es.Add("token", "is required for bearer auth")
		}
		if a.Username != "" || a.Password != "" {
			es.Add("username", "and password are for basic auth, not bearer")
		}
	default:
		es.Add("type", "must be \"basic\" or \"bearer\", not %q%s", a.Type, strict.DidYouMean(a.Type, []string{"basic", "bearer"}))
	}
	return es
}

func checkHeaders(h map[string]string) strict.Errors {
	var es strict.Errors
	for _, k := range slices.Sorted(maps.Keys(h)) {
		v := h[k]
		if !validHeaderName(k) {
			es.Add(fmt.Sprintf("[%q]", k), "is not a valid header name")
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			es.Add(fmt.Sprintf("[%q]", k), "value must not contain CR, LF or NUL")
		}
		if strings.EqualFold(k, "Authorization") {
			es.Add(fmt.Sprintf("[%q]", k), "set credentials with auth, so they are never logged")
		}
	}
	return es
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r >= 127 || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}
