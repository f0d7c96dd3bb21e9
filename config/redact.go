package config

import (
	"encoding/json"
	"slices"

	"github.com/osgate/osgate/internal/redact"
)

// redacted replaces a secret in Redacted's copy.
const redacted = "***"

// Redacted returns a deep copy of c with every secret replaced by "***":
// the broker and bridge passwords, the API key hashes, the fleet token,
// and in the drivers' settings, devices and channels every key that names
// a secret (password, secret, token, cookie, authorization, or a name
// ending in "key"), every configured header but a few harmless ones
// (Accept, Content-Type, User-Agent, ...), and the query values and
// passwords of URLs. Empty secrets stay empty, so the copy still shows
// what is unset. Use it wherever a config is shown.
func (c *Config) Redacted() *Config {
	r := *c
	r.Broker.Managed = clonePtr(c.Broker.Managed)
	r.Broker.Password = hide(c.Broker.Password)
	r.Broker.URL = hideQuery(c.Broker.URL)
	if br := c.Broker.Bridge; br != nil {
		b := *br
		b.Password = hide(br.Password)
		b.TopicsOut = slices.Clone(br.TopicsOut)
		b.TopicsIn = slices.Clone(br.TopicsIn)
		b.QoS = clonePtr(br.QoS)
		b.TLS = clonePtr(br.TLS)
		r.Broker.Bridge = &b
	}
	r.Export.QoS = clonePtr(c.Export.QoS)
	if c.Remote != nil {
		rm := *c.Remote
		rm.BearerToken = hide(rm.BearerToken)
		rm.URL, rm.SignatureURL = hideQuery(rm.URL), hideQuery(rm.SignatureURL)
		r.Remote = &rm
	}
	r.RPC.APIKeys = make([]APIKey, len(c.RPC.APIKeys))
	for i, k := range c.RPC.APIKeys {
		r.RPC.APIKeys[i] = APIKey{Name: k.Name, SHA256: hide(k.SHA256), Scope: k.Scope}
	}
	if c.RPC.APIKeys == nil {
		r.RPC.APIKeys = nil
	}
	// Operator keys are public keys: shown as they are.
	r.RPC.OperatorKeys = slices.Clone(c.RPC.OperatorKeys)
	r.Broker.AnonymousRead = clonePtr(c.Broker.AnonymousRead)
	r.Connectors = make([]Connector, len(c.Connectors))
	for i, cn := range c.Connectors {
		n := cn
		n.Enabled = clonePtr(cn.Enabled)
		n.Settings = redact.JSON(cn.Settings)
		n.Devices = make([]Device, len(cn.Devices))
		for j, d := range cn.Devices {
			nd := d
			nd.Driver = redact.JSON(d.Driver)
			nd.Channels = make([]Channel, len(d.Channels))
			for k, ch := range d.Channels {
				nd.Channels[k] = ch.clone()
			}
			if d.Channels == nil {
				nd.Channels = nil
			}
			n.Devices[j] = nd
		}
		if cn.Devices == nil {
			n.Devices = nil
		}
		r.Connectors[i] = n
	}
	if c.Connectors == nil {
		r.Connectors = nil
	}
	return &r
}

func (ch Channel) clone() Channel {
	n := ch
	n.Scale, n.Offset = clonePtr(ch.Scale), clonePtr(ch.Offset)
	n.Min, n.Max = clonePtr(ch.Min), clonePtr(ch.Max)
	n.Decimals = clonePtr(ch.Decimals)
	if db := ch.Deadband; db != nil {
		d := *db
		d.MaxSilence = clonePtr(db.MaxSilence)
		n.Deadband = &d
	}
	n.Driver = redact.JSON(ch.Driver)
	return n
}

func hide(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// hideQuery masks the query values and password of a URL.
func hideQuery(u string) string {
	s, _ := redact.QueryValues(u)
	return s
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Secrets are the secret values in c (as Redacted finds them), for
// redact.Scrub to take out of errors and log lines about c.
func (c *Config) Secrets() []string {
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return redact.Secrets(v)
}

// Scrub takes c's secret values out of text.
func (c *Config) Scrub(text string) string { return redact.Scrub(text, c.Secrets()) }
