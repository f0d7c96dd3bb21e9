// Package broker runs the local Mosquitto that osgate exports to: it writes
// mosquitto.conf from the config (Conf) and starts and supervises the
// mosquitto process (Broker). The appliance image uses the same Conf.
package broker

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/topic"
)

const (
	defaultListen    = "127.0.0.1:1883"
	defaultAutosave  = 5 * time.Second
	maxInflight      = 64
	typicalMessage   = 512                // bytes, for sizing the queue in messages
	minQueuedBytes   = 64 << 20           // floor of max_queued_bytes
	maxQueuedBytes   = int64(4) << 30     // ceiling of the automatic size
	minQueuedMsgs    = 100000             // floor of max_queued_messages
	bridgeRestart    = "2 30"             // restart_timeout: back-off base and cap, seconds
	bridgeConnection = "osgate-cloud"     // the bridge's connection name
	bridgeKeepalive  = 60                 // seconds, when the config has none
	defaultTopicsOut = "telemetry/#"      // what the bridge sends up by default
	confDir          = "mosquitto"        // under the state dir
	passwordFileName = "passwd"           // in confDir
	aclFileName      = "acl"              // in confDir
	persistenceName  = "mosquitto.db"     // in confDir
	confFileName     = "mosquitto.conf"   // in confDir
	defaultClientID  = "osgate-{gateway}" // the bridge's remote client id
	defaultLogTypes  = "error warning notice information"
	defaultExport    = "telemetry/{gateway}/{device}" // export.topic's default
	defaultMaxMsg    = 1 << 20                        // rpc.max_body's default
	anonymousRead    = "telemetry/#"                  // what clients without a username may read
	statusTopics     = "status/#"                     // the export's device and gateway status
)

// Access is what the managed broker needs to know of osgate's own
// clients to write its ACL and limits.
type Access struct {
	// ExportTopic is the export's topic template (export.topic; default
	// "telemetry/{gateway}/{device}"): the export client may write it.
	ExportTopic string
	// MaxMessage is the largest payload the broker accepts from anyone,
	// the bridge included (message_size_limit): the largest message
	// osgate reads, rpc.max_body (default 1 MiB).
	MaxMessage int64
}

func (a Access) withDefaults() Access {
	if a.ExportTopic == "" {
		a.ExportTopic = defaultExport
	}
	if a.MaxMessage <= 0 {
		a.MaxMessage = defaultMaxMsg
	}
	return a
}

// Conf returns the mosquitto.conf text for cfg: the listener, who may log
// in (the password file and ACL that Broker.Run writes; ACL says who may
// do what), the message size limit, persistence under stateDir/mosquitto/,
// queue limits sized to the disk (Mosquitto's default of 1000 queued
// messages per client, the bridge included, drops data), and the bridge
// to the cloud broker if one is configured.
//
// Clients without a username may connect to a loopback listener only, and
// only when broker.anonymous_read is not false; a listener beyond loopback
// needs broker.username.
func Conf(cfg config.Broker, gatewayID, stateDir string, access Access) ([]byte, error) {
	return conf(cfg, gatewayID, stateDir, access, queueLimits(stateDir))
}

// geteuid is os.Geteuid; tests replace it.
var geteuid = os.Geteuid

// limits are the automatic queue sizes (see queueLimits).
type limits struct {
	messages int
	bytes    int64
}

func conf(cfg config.Broker, gatewayID, stateDir string, access Access, auto limits) ([]byte, error) {
	var w confWriter
	access = access.withDefaults()
	dir := filepath.Join(stateDir, confDir)
	host, port, err := listenAddr(cfg.Listen)
	if err != nil {
		return nil, err
	}
	anonymous, err := allowAnonymous(cfg, host)
	if err != nil {
		return nil, err
	}
	w.comment("Written by osgate; changes are overwritten at every start.")
	w.line("per_listener_settings", "false")
	w.line("listener", strconv.Itoa(port), host)
	w.comment("osgate's own clients and broker.username log in with passwords; the ACL says what each may do.")
	w.line("allow_anonymous", strconv.FormatBool(anonymous))
	w.line("password_file", filepath.Join(dir, passwordFileName))
	w.line("acl_file", filepath.Join(dir, aclFileName))
	w.comment("No message larger than osgate reads, from any client or the bridge: dropped (and acknowledged) by the broker.")
	w.line("message_size_limit", strconv.FormatInt(access.MaxMessage, 10))
	if geteuid() == 0 {
		// Started as root, mosquitto switches to the "mosquitto" user, who
		// cannot write osgate's state dir; osgate runs it as itself. That is
		// the appliance, whose only program is osgate; on a Debian host the
		// systemd unit runs osgate, and so Mosquitto, as the user osgate
		// (deploy/README.md), and no user line is written.
		w.line("user", "root")
	}
	autosave := cfg.AutosaveInterval
	if autosave <= 0 {
		autosave = defaultAutosave
	}
	w.line("persistence", "true")
	w.line("persistence_location", dir+string(filepath.Separator))
	w.line("persistence_file", persistenceName)
	w.line("autosave_interval", strconv.Itoa(int((autosave+time.Second-1)/time.Second)))
	msgs, bytes := auto.messages, auto.bytes
	if cfg.MaxQueuedMessages > 0 {
		msgs = cfg.MaxQueuedMessages
	}
	if cfg.MaxQueuedBytes > 0 {
		bytes = cfg.MaxQueuedBytes
	}
	w.line("max_queued_messages", strconv.Itoa(msgs))
	w.line("max_queued_bytes", strconv.FormatInt(bytes, 10))
	w.line("max_inflight_messages", strconv.Itoa(maxInflight))
	w.line("queue_qos0_messages", "false")
	w.line("log_dest", "stderr")
	for _, t := range strings.Fields(defaultLogTypes) {
		w.line("log_type", t)
	}
	w.line("log_timestamp", "false") // slog stamps the lines
	w.line("connection_messages", "true")
	if cfg.Bridge != nil {
		if err := bridge(&w, cfg.Bridge, gatewayID); err != nil {
			return nil, err
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	return []byte(w.b.String()), nil
}

func bridge(w *confWriter, b *config.Bridge, gatewayID string) error {
	if _, _, err := net.SplitHostPort(b.Address); err != nil {
		return fmt.Errorf("broker: bridge.address %q: want host:port: %w", b.Address, err)
	}
	qos := 1
	if b.QoS != nil {
		qos = *b.QoS
	}
	if qos < 0 || qos > 2 {
		return fmt.Errorf("broker: bridge.qos %d: must be 0, 1 or 2", qos)
	}
	id := bridgeClientID(b, gatewayID)
	w.comment("The bridge to the cloud broker: a persistent session under a stable client id.")
	w.line("connection", bridgeConnection)
	w.line("address", b.Address)
	w.line("remote_clientid", id)
	w.line("cleansession", "false")
	w.line("bridge_protocol_version", "mqttv311")
	w.line("try_private", "true")
	// The bridge's state on both brokers: "1" on connect; "0" as its will
	// on the cloud, so a dead gateway or a cut link shows there within
	// 1.5 keepalives (docs/status.md). Not matched by any topic out
	// (config validation refuses those), or a stale local "0" would follow.
	w.line("notifications", "true")
	w.line("notification_topic", topic.BridgeStatus(gatewayID))
	w.line("start_type", "automatic")
	w.line("restart_timeout", bridgeRestart)
	keepalive := bridgeKeepalive
	if b.Keepalive > 0 {
		keepalive = int((b.Keepalive + time.Second - 1) / time.Second)
	}
	w.line("keepalive_interval", strconv.Itoa(keepalive))
	if b.Username != "" {
		w.line("remote_username", b.Username)
		w.line("remote_password", b.Password)
	}
	if b.ServerName != "" {
		return fmt.Errorf("broker: bridge.server_name: Mosquitto's bridge cannot set a server name")
	}
	// The TLS keys of every client (internal/tlsconf), in Mosquitto's
	// words: insecure skips the name check, the chain is still checked
	// against ca_file.
	if b.CAFile != "" {
		w.line("bridge_cafile", b.CAFile)
		if b.CertFile != "" || b.KeyFile != "" {
			if b.CertFile == "" || b.KeyFile == "" {
				return fmt.Errorf("broker: bridge.cert_file and bridge.key_file go together")
			}
			w.line("bridge_certfile", b.CertFile)
			w.line("bridge_keyfile", b.KeyFile)
		}
		if b.Insecure {
			w.line("bridge_insecure", "true")
		}
	} else if b.CertFile != "" || b.KeyFile != "" || b.Insecure {
		return fmt.Errorf("broker: bridge.cert_file, key_file and insecure need bridge.ca_file (TLS)")
	} else if b.TLS == nil || *b.TLS {
		return fmt.Errorf("broker: bridge without ca_file: set ca_file for TLS, or \"tls\": false to bridge in clear text on purpose")
	}
	out := b.TopicsOut
	if len(out) == 0 {
		out = []string{defaultTopicsOut}
	}
	q := strconv.Itoa(qos)
	for _, t := range out {
		if topic.Matches(t, topic.BridgeStatus(gatewayID)) {
			return fmt.Errorf("broker: bridge.topics_out %q matches the bridge's own state topic %s: use narrower filters", t, topic.BridgeStatus(gatewayID))
		}
		w.topic(t, "out", q)
	}
	// The gateway's and its devices' retained status documents, always,
	// at QoS 0: Mosquitto 2.0 lets new messages overtake ones queued for a
	// bridge (after an outage or a restart), so a queued stale state could
	// land last and stay retained. At QoS 0 nothing is queued; the gateway
	// publishes every current state again each time the bridge connects
	// (it watches the notification topic), and that is what the cloud keeps.
	w.topic(topic.GatewayStatus(gatewayID), "out", "0")
	w.topic(topic.DeviceStatusFilter(gatewayID), "out", "0")
	for _, t := range b.TopicsIn {
		w.topic(t, "in", q)
	}
	// JSON-RPC from the cloud (appliance/mqttrpc): requests in, responses out.
	w.topic("rpc/"+gatewayID+"/request/#", "in", "1")
	w.topic("rpc/"+gatewayID+"/response/#", "out", "1")
	return nil
}

// allowAnonymous says whether clients without a username may connect:
// on a loopback listener unless broker.anonymous_read is false; never
// beyond loopback, where broker.username is required.
func allowAnonymous(cfg config.Broker, host string) (bool, error) {
	if !config.LoopbackHost(host) {
		switch {
		case cfg.Username == "":
			return false, fmt.Errorf("broker: listen %s: a listener beyond loopback needs broker.username and broker.password", cfg.Listen)
		case cfg.AnonymousRead != nil && *cfg.AnonymousRead:
			return false, fmt.Errorf("broker: listen %s: broker.anonymous_read needs a loopback listener; clients beyond loopback log in with broker.username", cfg.Listen)
		}
		return false, nil
	}
	return cfg.AnonymousRead == nil || *cfg.AnonymousRead, nil
}

// listenAddr splits a listen address (default 127.0.0.1:1883).
func listenAddr(listen string) (string, int, error) {
	if listen == "" {
		listen = defaultListen
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("broker: listen %q: want host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("broker: listen %q: port must be 1-65535", listen)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// confWriter writes conf lines, refusing values that would break out of
// their line (a newline in a password would add a directive).
type confWriter struct {
	b   strings.Builder
	err error
}

func (w *confWriter) comment(text string) { w.b.WriteString("# " + text + "\n") }

func (w *confWriter) line(key string, values ...string) {
	w.b.WriteString(key)
	for _, v := range values {
		if v == "" || strings.ContainsAny(v, "\r\n\x00") {
			if w.err == nil {
				// Not the value: it may be a password.
				w.err = fmt.Errorf("broker: %s: a value is empty or spans lines", key)
			}
		}
		w.b.WriteByte(' ')
		w.b.WriteString(v)
	}
	w.b.WriteByte('\n')
}

// topic writes a bridge topic line; the pattern is one word of the line.
func (w *confWriter) topic(pattern, direction, qos string) {
	if pattern == "" || strings.ContainsAny(pattern, " \t") {
		if w.err == nil {
			w.err = fmt.Errorf("broker: bridge topic %q: must be one MQTT filter without spaces", pattern)
		}
	}
	w.line("topic", pattern, direction, qos)
}
