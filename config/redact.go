package config

import (
	"encoding/json"
	"slices"
	"strings"
)

// redacted replaces a secret in Redacted's copy.
const redacted = "***"

// Redacted returns a deep copy of c with every secret replaced by "***":
// the broker and bridge passwords, the API key hashes, and in the drivers'
// settings, devices and channels every key that names a secret (password,
// secret, token, or a name ending in "key"). Empty secrets stay empty, so
// the copy still shows what is unset. Use it wherever a config is shown.
func (c *Config) Redacted() *Config {
	r := *c
	r.Broker.Managed = clonePtr(c.Broker.Managed)
	r.Broker.Password = hide(c.Broker.Password)
	if br := c.Broker.Bridge; br != nil {
		b := *br
		b.Password = hide(br.Password)
		b.TopicsOut = slices.Clone(br.TopicsOut)
		b.TopicsIn = slices.Clone(br.TopicsIn)
		b.QoS = clonePtr(br.QoS)
		r.Broker.Bridge = &b
	}
	r.Export.QoS = clonePtr(c.Export.QoS)
	if c.Remote != nil {
		rm := *c.Remote
		rm.BearerToken = hide(rm.BearerToken)
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
		n.Settings = redactJSON(cn.Settings)
		n.Devices = make([]Device, len(cn.Devices))
		for j, d := range cn.Devices {
			nd := d
			nd.Driver = redactJSON(d.Driver)
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
	n.Driver = redactJSON(ch.Driver)
	return n
}

func hide(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// redactJSON copies raw JSON, replacing the values of secret-looking keys
// at any depth. JSON that does not parse is replaced as a whole: it is not
// shown rather than shown unredacted.
func redactJSON(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		b, _ := json.Marshal(redacted)
		return b
	}
	b, err := json.Marshal(redactValue(v))
	if err != nil {
		b, _ = json.Marshal(redacted)
	}
	return b
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			if secretKey(k) {
				if s, ok := el.(string); !ok || s != "" {
					x[k] = redacted
				}
				continue
			}
			x[k] = redactValue(el)
		}
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
	}
	return v
}

// secretKey says whether a settings key names a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "secret", "token"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return strings.HasSuffix(k, "key") || strings.HasSuffix(k, "keys")
}
