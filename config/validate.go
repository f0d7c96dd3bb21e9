package config

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/timesource"
	"github.com/osgate/osgate/internal/topic"
)

// validate checks what the decoder cannot: impossible combinations and
// values out of range. Every problem is added to es with its path.
func (c *Config) validate(es *strict.Errors) {
	c.validateGateway(es)
	c.validateBroker(es)
	c.validateExport(es)
	c.validateRPC(es)
	c.validateClock(es)
	c.validateConnectors(es)
	if c.Remote != nil {
		es.Merge("remote", c.Remote.Validate())
	}
}

func (c *Config) validateGateway(es *strict.Errors) {
	checkTopicLevel(es, "gateway.id", c.Gateway.ID)
	// The id is a word of mosquitto.conf (the bridge's RPC topics) and of
	// client ids.
	checkWord(es, "gateway.id", c.Gateway.ID)
	if c.Gateway.ConfigGrace < 0 {
		es.Add("gateway.config_grace", "must not be negative")
	}
	if c.Gateway.DiskWarnBytes < 0 {
		es.Add("gateway.disk_warn_bytes", "must not be negative (0: the default, a tenth of the file system, at most 128 MiB)")
	}
	if c.Gateway.StatusInterval < 0 || c.Gateway.StatusInterval > 0 && c.Gateway.StatusInterval < time.Second {
		es.Add("gateway.status_interval", "must be at least 1s (0: the default, 5m)")
	}
	validateLabels(es, "gateway.labels", c.Gateway.Labels)
}

// Bounds of gateway.labels: they travel in every status document.
const (
	maxLabels     = 16
	maxLabelKey   = 32
	maxLabelValue = 64
)

// labelKeyRe is a label's name; labelValueRe its value (a selector
// separates terms with "," and compares with "=" and "!=").
var (
	labelKeyRe   = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
	labelValueRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$`)
)

// reservedLabels are the names fleet selectors use for the status
// document's own fields.
var reservedLabels = []string{"id", "state", "version", "health", "ota", "config", "seen", "cohort"}

func validateLabels(es *strict.Errors, path string, labels map[string]string) {
	if len(labels) > maxLabels {
		es.Add(path, "at most %d labels, not %d", maxLabels, len(labels))
	}
	for k, v := range labels {
		p := strict.Join(path, k)
		switch {
		case len(k) > maxLabelKey || !labelKeyRe.MatchString(k):
			es.Add(p, "a label name is a lower-case letter, then up to %d letters, digits, \"_\", \".\" or \"-\"", maxLabelKey-1)
		case slices.Contains(reservedLabels, k):
			es.Add(p, "is a field of the status document (%s): fleet selectors could not tell them apart; choose another name", strings.Join(reservedLabels, ", "))
		}
		if len(v) > maxLabelValue || !labelValueRe.MatchString(v) {
			es.Add(p, "a label value is 1 to %d letters, digits or \"_.:/@+-\" (no spaces, \",\" or \"=\": selectors use them), starting with a letter or digit", maxLabelValue)
		}
	}
}

// maxClockSources bounds clock.sources.
const maxClockSources = 16

func (c *Config) validateClock(es *strict.Errors) {
	ck := &c.Clock
	if len(ck.Sources) > maxClockSources {
		es.Add("clock.sources", "at most %d sources, not %d", maxClockSources, len(ck.Sources))
	}
	seen := map[string]bool{}
	for i, s := range ck.Sources {
		path := strict.Index("clock.sources", i)
		src, err := timesource.ParseSource(s)
		switch {
		case err != nil:
			es.Add(path, "%v", err)
		case seen[s]:
			es.Add(path, "%q is listed twice", s)
		case src.Kind == timesource.System && ck.SetSystem != nil && *ck.SetSystem:
			es.Add(path, `"system" means the operating system keeps the time, but clock.set_system lets osgate keep it: name NTP servers, an https:// server, "remote" or "rtc", or set clock.set_system to false`)
		case src.Kind == timesource.Remote && c.Remote == nil:
			es.Add(path, `"remote" is the Date of the fleet server, but there is no remote block`)
		case src.Kind == timesource.Remote && !strings.HasPrefix(c.Remote.URL, "https://"):
			es.Add(path, `"remote" needs an https:// remote.url: the Date of a plain http:// server is vouched for by nobody`)
		}
		seen[s] = true
	}
	if ck.Hold < 0 {
		es.Add("clock.hold", "must not be negative")
	}
	if ck.Interval != 0 && ck.Interval < time.Minute {
		es.Add("clock.interval", "at least \"1m\" (NTP servers ask clients not to ask more often), not %s", ck.Interval)
	}
}

func (c *Config) validateBroker(es *strict.Errors) {
	b := &c.Broker
	if b.Managed != nil && *b.Managed {
		if b.URL != "" {
			es.Add("broker.url", "must not be set when the broker is managed (osgate runs mosquitto on broker.listen); set broker.managed to false to use a broker someone else runs")
		}
		checkHostPort(es, "broker.listen", b.Listen)
		if host, _, err := net.SplitHostPort(b.Listen); err == nil && !LoopbackHost(host) {
			switch {
			case b.Username == "":
				es.Add("broker.listen", "%s is reachable beyond this machine: set broker.username and broker.password, or listen on 127.0.0.1", b.Listen)
			case b.Password == "" && b.PasswordFile == "":
				es.Add("broker.password", "is required with a listener beyond this machine (broker.listen is %q): set it, or broker.password_file", b.Listen)
			}
		}
		checkConfValue(es, "broker.binary", b.Binary)
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
	if b.PasswordFile != "" {
		switch {
		case b.Managed != nil && !*b.Managed:
			es.Add("broker.password_file", "is only used when the broker is managed (broker.managed is false): give broker.password")
		case b.Username == "":
			es.Add("broker.password_file", "needs broker.username")
		case b.Password != "":
			es.Add("broker.password_file", "and broker.password are two passwords of one user: give one of them")
		}
	}
	if b.Username == BrokerExportUser || b.Username == BrokerRPCUser {
		es.Add("broker.username", "%q is the user of osgate's own clients of the managed broker; choose another name", b.Username)
	}
	if b.AnonymousRead != nil && *b.AnonymousRead {
		if b.Managed != nil && !*b.Managed {
			es.Add("broker.anonymous_read", "is only used when the broker is managed (broker.managed is false)")
		} else if host, _, err := net.SplitHostPort(b.Listen); err == nil && !LoopbackHost(host) {
			es.Add("broker.anonymous_read", "needs a loopback listener (broker.listen is %q): clients beyond loopback log in with broker.username", b.Listen)
		}
	}
	if strings.Contains(b.Username, ":") {
		es.Add("broker.username", "must not contain \":\" (it separates user and password in Mosquitto's password file)")
	}
	checkConfValue(es, "broker.username", b.Username)
	checkSecretChars(es, "broker.password", b.Password)
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
	br.Check(es, path)
	if br.ServerName != "" && !br.Plain() {
		es.Add(path+".server_name", "cannot be set for the bridge: Mosquitto checks the cloud broker's certificate against the host of address; put that name in address, or set insecure to skip the check (the certificate must still be signed by ca_file)")
	}
	switch {
	case br.Plain():
		br.CheckPlain(es, path, "is for TLS, and tls is false")
	case br.CAFile == "":
		if br.TLS == nil {
			es.Add(path+".ca_file", "is required for TLS (the CA of the cloud broker); without TLS the bridge password and the cloud RPC cross the network in clear text: set \"tls\": false to do that on purpose")
		} else {
			es.Add(path+".ca_file", "is required with \"tls\": true (the CA of the cloud broker)")
		}
	}
	switch {
	case br.Password != "" && br.Username == "":
		es.Add(path+".password", "needs username")
	case br.Username != "" && br.Password == "":
		es.Add(path+".password", "is required with username (Mosquitto's bridge cannot send an empty password)")
	}
	checkWord(es, path+".client_id", br.ClientID)
	checkConfValue(es, path+".username", br.Username)
	checkSecretChars(es, path+".password", br.Password)
	for _, f := range []struct{ key, v string }{{"ca_file", br.CAFile}, {"cert_file", br.CertFile}, {"key_file", br.KeyFile}} {
		checkConfValue(es, path+"."+f.key, f.v)
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
		if pub, err := sign.ParsePublicKey(k.PublicKey); err != nil {
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

// LoopbackHost says whether a listen host reaches this machine only
// ("localhost", 127.0.0.0/8, ::1).
func LoopbackHost(host string) bool {
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
// "+" only as a whole level; one word of mosquitto.conf.
func checkFilter(es *strict.Errors, path, f string) {
	if f == "" {
		es.Add(path, "must not be empty")
		return
	}
	if strings.IndexFunc(f, unicode.IsSpace) >= 0 || hasControl(f) {
		es.Add(path, "must not contain spaces or control characters (it is one word of mosquitto.conf): %q", f)
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

// hasControl reports a control character (a line break would end a line
// of mosquitto.conf and start a directive of the writer's choosing).
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0
}

// checkConfValue checks a value written on a line of mosquitto.conf.
func checkConfValue(es *strict.Errors, path, v string) {
	if hasControl(v) {
		es.Add(path, "must not contain control characters such as line breaks: %q", v)
	}
}

// checkSecretChars is checkConfValue for a secret: the message does not
// show the value.
func checkSecretChars(es *strict.Errors, path, v string) {
	if hasControl(v) {
		es.Add(path, "must not contain control characters such as line breaks")
	}
}

// checkWord checks a value that must be one word: no spaces either.
func checkWord(es *strict.Errors, path, v string) {
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 || hasControl(v) {
		es.Add(path, "must not contain spaces or control characters: %q", v)
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
		es.Add(path, "is not a URL")
		return
	}
	switch u.Scheme {
	case "tcp", "ssl", "ws", "wss":
	default:
		es.Add(path, "must start with tcp://, ssl://, ws:// or wss://: %q%s", redact.URL(s), strict.DidYouMean(u.Scheme, []string{"tcp", "ssl", "ws", "wss"}))
		return
	}
	if u.Port() == "" || u.Hostname() == "" {
		es.Add(path, "needs a host and a port, e.g. \"tcp://127.0.0.1:1883\": %q", redact.URL(s))
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

// listen is one address the gateway would listen on, with the key that
// sets it.
type listen struct{ path, addr string }

// coreListens are the listeners of the gateway itself: the managed broker
// and the RPC service.
func (c *Config) coreListens() []listen {
	var ls []listen
	if c.Broker.Managed == nil || *c.Broker.Managed {
		ls = append(ls, listen{"broker.listen", c.Broker.Listen})
	}
	if c.RPC.Listen != RPCOff {
		ls = append(ls, listen{"rpc.listen", c.RPC.Listen})
	}
	return ls
}

// checkPorts reports two listeners that would take one port: the same
// port on the same address, or on addresses of which one is every address
// ("0.0.0.0", "::", ""). The second would fail to start.
func checkPorts(es *strict.Errors, ls []listen) {
	type bound struct {
		path, host, addr string
	}
	byPort := map[string][]bound{}
	for _, l := range ls {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			continue // reported where the address is checked
		}
		host = canonicalHost(host)
		for _, b := range byPort[port] {
			if b.host == host || b.host == "*" || host == "*" {
				es.Add(l.path, "port %s is also taken by %s (%s): two listeners cannot share it", port, b.path, b.addr)
				break
			}
		}
		byPort[port] = append(byPort[port], bound{l.path, host, l.addr})
	}
}

// canonicalHost is "*" for every address, and names loopback one way.
func canonicalHost(h string) string {
	switch h {
	case "", "0.0.0.0", "::", "[::]":
		return "*"
	case "localhost":
		return "127.0.0.1"
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return strings.ToLower(h)
}
