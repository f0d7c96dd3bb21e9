package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/topic"
)

// validate checks what the decoder cannot: impossible combinations and
// values out of range. Every problem is added to es with its path.
func (c *Config) validate(es *strict.Errors) {
	c.validateGateway(es)
	c.validateBroker(es)
	c.validateExport(es)
	c.validateRPC(es)
	c.validateConnectors(es)
	if c.Remote != nil {
		es.Merge("remote", c.Remote.Validate())
	}
}

func (c *Config) validateGateway(es *strict.Errors) {
	checkTopicLevel(es, "gateway.id", c.Gateway.ID)
	if c.Gateway.ConfigGrace < 0 {
		es.Add("gateway.config_grace", "must not be negative")
	}
	if c.Gateway.DiskWarnBytes < 0 {
		es.Add("gateway.disk_warn_bytes", "must not be negative (0: the default, 128 MiB)")
	}
}

func (c *Config) validateBroker(es *strict.Errors) {
	b := &c.Broker
	if b.Managed != nil && *b.Managed {
		if b.URL != "" {
			es.Add("broker.url", "must not be set when the broker is managed (osgate runs mosquitto on broker.listen); set broker.managed to false to use a broker someone else runs")
		}
		checkHostPort(es, "broker.listen", b.Listen)
		if b.AutosaveInterval < 0 {
			es.Add("broker.autosave_interval", "must be a positive duration like \"5s\", not %s", b.AutosaveInterval)
		}
	} else {
		switch {
		case b.URL == "":
			es.Add("broker.url", "is required when broker.managed is false (e.g. \"tcp://127.0.0.1:1883\")")
		default:
			checkBrokerURL(es, "broker.url", b.URL)
		}
		for _, f := range []struct{ path, v string }{{"broker.listen", b.Listen}, {"broker.binary", b.Binary}} {
			if f.v != "" {
				es.Add(f.path, "is only used when the broker is managed (broker.managed is false)")
			}
		}
		if b.Bridge != nil {
			es.Add("broker.bridge", "needs a managed broker: osgate writes the bridge into the mosquitto.conf it manages (broker.managed is false)")
		}
	}
	if b.Password != "" && b.Username == "" {
		es.Add("broker.password", "needs broker.username")
	}
	if b.Username == BrokerExportUser || b.Username == BrokerRPCUser {
		es.Add("broker.username", "%q is the user of osgate's own clients of the managed broker; choose another name", b.Username)
	}
	if b.AnonymousRead != nil && *b.AnonymousRead {
		if b.Managed != nil && !*b.Managed {
			es.Add("broker.anonymous_read", "is only used when the broker is managed (broker.managed is false)")
		} else if host, _, err := net.SplitHostPort(b.Listen); err == nil && !isLoopbackHost(host) {
			es.Add("broker.anonymous_read", "needs a loopback listener (broker.listen is %q): clients beyond loopback log in with broker.username", b.Listen)
		}
	}
	if b.MaxQueuedMessages < 0 {
		es.Add("broker.max_queued_messages", "must not be negative (0: sized from the free space of the state dir)")
	}
	if b.MaxQueuedBytes < 0 {
		es.Add("broker.max_queued_bytes", "must not be negative (0: sized from the free space of the state dir)")
	}
	if b.Bridge != nil {
		validateBridge(es, "broker.bridge", b.Bridge, c.Gateway.ID)
	}
}

func validateBridge(es *strict.Errors, path string, br *Bridge, gatewayID string) {
	if br.Address != "" {
		checkHostPort(es, path+".address", br.Address)
	} else {
		es.Add(path+".address", "must not be empty: the cloud broker's host:port")
	}
	checkPair(es, path, "cert_file", br.CertFile, "key_file", br.KeyFile)
	if br.CAFile == "" {
		if br.CertFile != "" {
			es.Add(path+".cert_file", "needs ca_file: a client certificate is only sent over TLS")
		}
		if br.Insecure {
			es.Add(path+".insecure", "needs ca_file: it only relaxes the TLS server name check")
		}
	}
	if br.Password != "" && br.Username == "" {
		es.Add(path+".password", "needs username")
	}
	checkQoS(es, path+".qos", br.QoS)
	bridgeState := topic.BridgeStatus(gatewayID)
	for i, t := range br.TopicsOut {
		checkFilter(es, strict.Index(path+".topics_out", i), t)
		if topic.Matches(t, bridgeState) {
			es.Add(strict.Index(path+".topics_out", i), "%q also matches %s, where the bridge itself reports its link to the cloud; a copy sent from here would overwrite the cloud's live state with a stale one: use narrower filters (status messages are always sent)", t, bridgeState)
		}
	}
	if br.Keepalive != 0 && (br.Keepalive < 5*time.Second || br.Keepalive > 65535*time.Second) {
		es.Add(path+".keepalive", "must be from \"5s\" to \"18h12m15s\" (Mosquitto's limits), not %s", br.Keepalive)
	}
	for i, t := range br.TopicsIn {
		checkFilter(es, strict.Index(path+".topics_in", i), t)
	}
	if len(br.TopicsOut) == 0 && len(br.TopicsIn) == 0 {
		es.Add(path+".topics_out", "must not be empty when topics_in is empty too: the bridge would carry nothing")
	}
}

func (c *Config) validateExport(es *strict.Errors) {
	e := &c.Export
	if !strings.Contains(e.Topic, "{device}") {
		es.Add("export.topic", "must contain {device}: each device is exported on its own topic (e.g. %q)", defaultTopic)
	} else {
		checkTopicTemplate(es, "export.topic", e.Topic)
	}
	checkQoS(es, "export.qos", e.QoS)
	if e.QueueLimit < 0 {
		es.Add("export.queue_limit", "must be a positive number of messages, not %d", e.QueueLimit)
	}
	if e.ClientID == "" {
		es.Add("export.client_id", "must not be empty")
	}
}

func (c *Config) validateRPC(es *strict.Errors) {
	r := &c.RPC
	if r.Listen != RPCOff {
		if strict.Suggest(r.Listen, []string{RPCOff}) != "" {
			es.Add("rpc.listen", "must be host:port or %q, not %q (did you mean %q?)", RPCOff, r.Listen, RPCOff)
		} else {
			checkHostPort(es, "rpc.listen", r.Listen)
		}
	}
	checkPair(es, "rpc", "cert_file", r.CertFile, "key_file", r.KeyFile)
	if r.MaxBody < 0 {
		es.Add("rpc.max_body", "must be a positive number of bytes, not %d", r.MaxBody)
	}
	names := map[string]int{}
	for i, k := range r.APIKeys {
		p := strict.Index("rpc.api_keys", i)
		if k.Name == "" {
			es.Add(p+".name", "must not be empty: it names the key in logs")
		} else if j, dup := names[k.Name]; dup {
			es.Add(p+".name", "%q is also the name of rpc.api_keys[%d]", k.Name, j)
		} else {
			names[k.Name] = i
		}
		if !isHex64(k.SHA256) {
			es.Add(p+".sha256", "must be the SHA-256 of the key as 64 hex digits (printf %%s KEY | sha256sum), not %d characters", len(k.SHA256))
		}
		if _, err := scope.Parse(k.Scope); err != nil {
			es.Add(p+".scope", "%v", err)
		}
	}
	c.validateOperatorKeys(es)
}

// validateOperatorKeys checks rpc.operator_keys: named once each, a
// public key each (only once), and a scope.
func (c *Config) validateOperatorKeys(es *strict.Errors) {
	names, pubs := map[string]int{}, map[string]int{}
	for i, k := range c.RPC.OperatorKeys {
		p := strict.Index("rpc.operator_keys", i)
		if k.Name == "" {
			es.Add(p+".name", "must not be empty: it names the signer in logs")
		} else if j, dup := names[k.Name]; dup {
			es.Add(p+".name", "%q is also the name of rpc.operator_keys[%d]", k.Name, j)
		} else {
			names[k.Name] = i
		}
		if pub, err := source.ParsePublicKey(k.PublicKey); err != nil {
			es.Add(p+".public_key", "must be an ed25519 public key in base64 (osgate rpc keygen prints it): %v", err)
		} else if j, dup := pubs[string(pub)]; dup {
			es.Add(p+".public_key", "is the same key as rpc.operator_keys[%d]", j)
		} else {
			pubs[string(pub)] = i
		}
		if _, err := scope.Parse(k.Scope); err != nil {
			es.Add(p+".scope", "%v", err)
		}
	}
}

// isLoopbackHost says whether a listen host is loopback only.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTopicLevel checks a name that becomes one MQTT topic level.
func checkTopicLevel(es *strict.Errors, path, s string) {
	switch {
	case s == "":
		es.Add(path, "must not be empty (it is a topic level)")
	case strings.ContainsAny(s, "/+#\x00"):
		es.Add(path, "must not contain \"/\", \"+\" or \"#\" (it is a topic level): %q", s)
	}
}

// checkTopicTemplate checks the export topic: placeholders {gateway} and
// {device} only, no wildcards.
func checkTopicTemplate(es *strict.Errors, path, t string) {
	rest := strings.NewReplacer("{gateway}", "", "{device}", "").Replace(t)
	switch {
	case strings.ContainsAny(rest, "{}"):
		es.Add(path, "knows only the placeholders {gateway} and {device}: %q", t)
	case strings.ContainsAny(t, "+#\x00"):
		es.Add(path, "must not contain the wildcards \"+\" or \"#\": %q", t)
	case strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") || strings.Contains(t, "//"):
		es.Add(path, "must not have empty topic levels: %q", t)
	}
}

// checkFilter checks an MQTT topic filter: "#" only as the last level,
// "+" only as a whole level.
func checkFilter(es *strict.Errors, path, f string) {
	if f == "" {
		es.Add(path, "must not be empty")
		return
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			es.Add(path, "is not a valid MQTT filter: \"#\" must be the whole last level: %q", f)
			return
		}
		if strings.Contains(l, "+") && l != "+" {
			es.Add(path, "is not a valid MQTT filter: \"+\" must be a whole level: %q", f)
			return
		}
	}
}

// checkHostPort checks a listen or dial address "host:port".
func checkHostPort(es *strict.Errors, path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		es.Add(path, "must be host:port, e.g. \"127.0.0.1:1883\": %q", addr)
		return
	}
	if strings.ContainsAny(host, " /") {
		es.Add(path, "has an invalid host %q", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		es.Add(path, "needs a port from 1 to 65535: %q", addr)
	}
}

// checkBrokerURL checks the URL of an unmanaged broker.
func checkBrokerURL(es *strict.Errors, path, s string) {
	u, err := url.Parse(s)
	if err != nil {
		es.Add(path, "is not a URL: %q", s)
		return
	}
	switch u.Scheme {
	case "tcp", "ssl", "ws", "wss":
	default:
		es.Add(path, "must start with tcp://, ssl://, ws:// or wss://: %q%s", s, strict.DidYouMean(u.Scheme, []string{"tcp", "ssl", "ws", "wss"}))
		return
	}
	if u.Port() == "" || u.Hostname() == "" {
		es.Add(path, "needs a host and a port, e.g. \"tcp://127.0.0.1:1883\": %q", s)
	}
}

func checkQoS(es *strict.Errors, path string, q *int) {
	if q != nil && (*q < 0 || *q > 2) {
		es.Add(path, "must be 0, 1 or 2, not %d", *q)
	}
}

// checkPair reports a certificate without its key or the reverse.
func checkPair(es *strict.Errors, path, an, a, bn, b string) {
	switch {
	case a != "" && b == "":
		es.Add(strict.Join(path, bn), "is required with %s", an)
	case a == "" && b != "":
		es.Add(strict.Join(path, an), "is required with %s", bn)
	}
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
