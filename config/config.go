// Package config is osgate's configuration: the schema of osgate.json, its
// strict decoding and validation (every error at once, with its JSON path),
// and the embedded default that runs with no file at all.
package config

import (
	"encoding/json"
	"time"

	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/tlsconf"
)

// Config is one osgate.json document.
type Config struct {
	Gateway Gateway `json:"gateway"`
	Broker  Broker  `json:"broker"`
	Export  Export  `json:"export"`
	RPC     RPC     `json:"rpc"`
	// Clock is where the gateway's time comes from; only the local
	// file's counts.
	Clock      Clock       `json:"clock"`
	Connectors []Connector `json:"connectors"`
	// Remote pulls the configuration from a fleet server; only the local
	// file's remote block counts (see config/source).
	Remote *source.RemoteSettings `json:"remote"`
}

// Gateway is the gateway's identity and where it keeps state.
type Gateway struct {
	// ID names the gateway in topics ({gateway}) and client ids; default:
	// the host name with every character other than a letter, digit, "-",
	// "_" or "." replaced by "-"; on a shared host name ("gokrazy") "gw-"
	// and the board's serial number ("osgate" when there is none).
	ID string `json:"id"`
	// StateDir holds config.db, the export store and Mosquitto's
	// persistence; default $OSGATE_STATE_DIR, else /perm/osgate when /perm
	// exists, else ./state. Parse makes it absolute.
	StateDir string `json:"state_dir"`
	// ConfigGrace is how long a newly applied configuration may leave the
	// gateway unhealthy (export broker unreachable) or with every connector
	// failing before it is rolled back and marked bad (default "2m").
	ConfigGrace time.Duration `json:"config_grace"`
	// DiskWarnBytes: with less free space than this on the state dir's
	// file system (where the export spool, Mosquitto's persistence and
	// config.db live), health is degraded (default 0: a tenth of that
	// file system, at most 128 MiB).
	DiskWarnBytes int64 `json:"disk_warn_bytes"`
	// Labels describe the installation (site, customer, hardware) for
	// the fleet: they are reported in the status document and select
	// gateways in `osgate fleet`. Only the local bootstrap file sets
	// them (a pulled configuration takes them from there).
	Labels map[string]string `json:"labels"`
	// StatusInterval is how often the gateway's status document is
	// published when nothing in it changed (default "5m"): the fleet's
	// "last seen".
	StatusInterval time.Duration `json:"status_interval"`
}

// Broker is the local Mosquitto that readings are exported to.
type Broker struct {
	// Managed: osgate writes mosquitto.conf and runs mosquitto itself
	// (default true). Unmanaged: URL names a broker someone else runs.
	Managed *bool `json:"managed"`
	// Binary is the mosquitto executable (default "mosquitto" on PATH;
	// managed only).
	Binary string `json:"binary"`
	// Listen is the managed broker's listener (default $OSGATE_BROKER_LISTEN,
	// else "127.0.0.1:1883").
	Listen string `json:"listen"`
	// URL of an unmanaged broker (required then; forbidden when managed):
	// tcp://, ssl://, ws:// or wss:// with host and port.
	URL string `json:"url"`
	// Username and Password: with an unmanaged broker, what osgate's
	// clients log in with. With a managed one, the user of other clients
	// (integrations, clients beyond loopback): it may read what osgate
	// exports and what the bridge brings in, and write what the bridge
	// sends up besides osgate's own topics. osgate's own clients use
	// credentials it generates (BrokerExportUser, BrokerRPCUser).
	Username string `json:"username"`
	Password string `json:"password"`
	// PasswordFile holds broker.username's password instead of Password:
	// the file's first line (a Docker or systemd secret, or a file osgate
	// makes). When the file does not exist, osgate makes it when the
	// broker starts: a random password, mode 0600. Managed broker only;
	// only the local file may set it.
	PasswordFile string `json:"password_file"`
	// AnonymousRead lets clients without a username read telemetry on a
	// loopback listener, and nothing else (default true on loopback;
	// false, and not allowed, beyond it). Managed only.
	AnonymousRead *bool `json:"anonymous_read"`
	// AutosaveInterval is how often Mosquitto writes its persistence file
	// (default "5s").
	AutosaveInterval time.Duration `json:"autosave_interval"`
	// MaxQueuedMessages and MaxQueuedBytes bound each client's queue
	// (including the bridge); 0 (the default): the broker manager sizes
	// them from the free space of the state dir.
	MaxQueuedMessages int   `json:"max_queued_messages"`
	MaxQueuedBytes    int64 `json:"max_queued_bytes"`
	// Bridge connects the managed broker to a cloud broker.
	Bridge *Bridge `json:"bridge"`
}

// The users of osgate's own clients of the managed broker, with passwords
// it generates (appliance/broker): the export, which writes telemetry and
// status, and the cloud RPC responder, which alone reads requests and
// writes responses. broker.username must be neither.
const (
	BrokerExportUser = "osgate-export"
	BrokerRPCUser    = "osgate-rpc"
)

// Bridge is the managed broker's bridge to the cloud broker.
type Bridge struct {
	// Address is "host:port" of the cloud broker.
	Address string `json:"address" strict:"required"`
	// ClientID is the stable remote client id (default "osgate-{gateway}").
	ClientID string `json:"client_id"`
	Username string `json:"username"`
	Password string `json:"password"`
	// TLS settings, the keys of every TLS client (internal/tlsconf),
	// written into mosquitto.conf. "tls" must be false to bridge without
	// TLS; with TLS (the default) ca_file is required: Mosquitto needs the
	// CA of the cloud broker. The bridge carries the bridge password and
	// the cloud RPC envelopes. server_name is not Mosquitto's to set.
	tlsconf.Client
	// TopicsOut are sent to the cloud (default ["telemetry/#"]), TopicsIn
	// received from it; MQTT filters.
	TopicsOut []string `json:"topics_out"`
	TopicsIn  []string `json:"topics_in"`
	// QoS of bridged messages (default 1).
	QoS *int `json:"qos"`
	// Keepalive of the bridge's connection (default "60s", at least "5s"):
	// a cut link is noticed by both ends within 1.5 times this, and the
	// cloud then publishes the bridge's "offline" will.
	Keepalive time.Duration `json:"keepalive"`
}

// Clock is where the gateway's time comes from (appliance/clock).
type Clock struct {
	// Sources are asked in order; the first that answers sets the time:
	// "ntp://HOST[:PORT]", "https://HOST/PATH" (the server's Date),
	// "remote" (the fleet server's Date), "rtc" or "rtc:/dev/rtcN",
	// "system" (the operating system keeps the time). Default:
	// ["ntp://pool.ntp.org", "rtc"] with SetSystem, else ["system"].
	Sources []string `json:"sources"`
	// SetSystem lets osgate set the system clock (it needs CAP_SYS_TIME):
	// default true on the appliance (where /perm exists), false
	// elsewhere, where the operating system keeps the time.
	SetSystem *bool `json:"set_system"`
	// Hold is how long after start readings wait on disk for a time
	// source before they are exported stamped from the restored clock
	// (default "2m").
	Hold time.Duration `json:"hold"`
	// Interval between questions to the sources once one has answered
	// (default "15m", at least "1m").
	Interval time.Duration `json:"interval"`
}

// Export is how readings are published to the local broker.
type Export struct {
	// Topic template; {gateway} and {device} are replaced
	// (default "telemetry/{gateway}/{device}").
	Topic string `json:"topic"`
	// QoS 0, 1 or 2 (default 1).
	QoS *int `json:"qos"`
	// ClientID is the fixed MQTT client id (default "osgate-{gateway}").
	ClientID string `json:"client_id"`
	// QueueLimit is how many messages may wait for the broker before
	// connectors are held back (default 100000).
	QueueLimit int  `json:"queue_limit"`
	Retain     bool `json:"retain"`
}

// RPC is the JSON-RPC 2.0 service over HTTP, with /healthz and /metrics.
type RPC struct {
	// Listen address (default "127.0.0.1:8080"); "off" (RPCOff) disables
	// the service.
	Listen string `json:"listen"`
	// APIKeys are the keys accepted over HTTP, stored as SHA-256 hex
	// digests only, each with its scope.
	APIKeys []APIKey `json:"api_keys"`
	// OperatorKeys are the ed25519 public keys whose signed requests are
	// run when they arrive over MQTT from the cloud
	// (appliance/mqttrpc), each with its scope.
	OperatorKeys []OperatorKey `json:"operator_keys"`
	// CertFile and KeyFile enable TLS.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// MaxBody bounds a request body in bytes (default 1 MiB).
	MaxBody int64 `json:"max_body"`
}

// APIKey is one accepted RPC key: a name, the key's SHA-256, never the
// key itself (`osgate rpc hash-key KEY`), and its scope ("read", "write"
// or "admin"; default "read").
type APIKey = apikey.Key

// OperatorKey is one key that may sign RPC requests sent from the cloud:
// a name for logs, the base64 ed25519 public key (`osgate rpc keygen`
// prints it; the private half stays with the operator), and its scope
// ("read", "write" or "admin"; default "read").
type OperatorKey = apikey.Operator

// Connector is one bus or protocol with its devices.
type Connector struct {
	Name string `json:"name" strict:"required"`
	Type string `json:"type" strict:"required"`
	// Enabled defaults to true. Disabled connectors are still validated.
	Enabled *bool `json:"enabled"`
	// Settings is the driver's own object, decoded by the driver.
	Settings json.RawMessage `json:"settings"`
	Devices  []Device        `json:"devices"`
}

// Device is one physical thing read through a connector. Keys the core does
// not know are the driver's (Driver).
type Device struct {
	Name string `json:"name" strict:"required"`
	// Interval between polls (default "10s"); for listeners, how long the
	// device may stay silent before it counts as stale.
	Interval time.Duration `json:"interval"`
	// Timeout of one poll (default: the interval, at most "5s").
	Timeout  time.Duration   `json:"timeout"`
	Channels []Channel       `json:"channels"`
	Driver   json.RawMessage `strict:"rest"`
}

// Channel is one value of a device with its transforms, applied in this
// order: scale/offset, expr, decimals, range, deadband, rename/unit. Keys the core does
// not know are the driver's (Driver).
type Channel struct {
	Name string `json:"name" strict:"required"`
	// Unit replaces the unit the driver reports.
	Unit string `json:"unit"`
	// Rename exports the channel under another name.
	Rename string `json:"rename"`
	// Scale and Offset: value*scale + offset.
	Scale  *float64 `json:"scale"`
	Offset *float64 `json:"offset"`
	// Expr is an expression of "value" (github.com/expr-lang/expr); Inverse
	// is its inverse for writes.
	Expr    string `json:"expr"`
	Inverse string `json:"inverse"`
	// Decimals rounds a float to this many decimal places (0 to 15).
	Decimals *int `json:"decimals"`
	// Min and Max: readings outside are dropped and counted.
	Min *float64 `json:"min"`
	Max *float64 `json:"max"`
	// Deadband suppresses readings that changed less than it allows.
	Deadband *Deadband `json:"deadband"`
	// Writable allows device.write on the channel.
	Writable bool            `json:"writable"`
	Driver   json.RawMessage `strict:"rest"`
}

// Deadband: report on change or period.
type Deadband struct {
	// Absolute change needed to report; or Percent of the last reported value.
	Absolute float64 `json:"absolute"`
	Percent  float64 `json:"percent"`
	// MaxSilence reports anyway when this long passed since the last report
	// (default "5m"; "0s" never).
	MaxSilence *time.Duration `json:"max_silence"`
}
