package config

import (
	"cmp"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/timesource"
)

// The defaults Parse fills in. examples/README.md lists them for
// integrators; keep both in step.
const (
	defaultBrokerListen    = "127.0.0.1:1883"
	defaultAutosave        = 5 * time.Second
	defaultBrokerBinary    = "mosquitto"
	defaultBridgeTopicOut  = "telemetry/#"
	defaultBridgeKeepalive = 60 * time.Second
	defaultQoS             = 1
	defaultTopic           = "telemetry/{gateway}/{device}"
	defaultQueueLimit      = 100000
	defaultRPCListen       = "127.0.0.1:8080"
	defaultMaxBody         = 1 << 20
	defaultInterval        = 10 * time.Second
	maxDefaultTimeout      = 5 * time.Second
	defaultMaxSilence      = 5 * time.Minute
	// RPCOff as rpc.listen disables the RPC service.
	RPCOff                 = "off"
	defaultGatewayID       = "osgate"
	defaultStatusInterval  = 5 * time.Minute
	permStateDir           = "osgate"
	localStateDir          = "state"
	clientIDTemplatePrefix = "osgate-"
)

// The environment's defaults. The container image (image/container) sets
// them, so that the embedded default, and every file that leaves these
// keys out, runs as a container needs: state in its volume, the broker
// reachable through a published port, with a login. A value the document
// gives always wins.
const (
	// EnvStateDir is the default of gateway.state_dir.
	EnvStateDir = "OSGATE_STATE_DIR"
	// EnvBrokerListen is the default of broker.listen (managed broker).
	EnvBrokerListen = "OSGATE_BROKER_LISTEN"
	// EnvBrokerUsername and EnvBrokerPasswordFile are the defaults of
	// broker.username and broker.password_file, taken together and only
	// when the managed broker listens beyond loopback and the document
	// names none of username, password and password_file.
	EnvBrokerUsername     = "OSGATE_BROKER_USERNAME"
	EnvBrokerPasswordFile = "OSGATE_BROKER_PASSWORD_FILE"
)

// permDir is where the appliance keeps state; a variable for tests.
var permDir = "/perm"

// hostname is os.Hostname; a variable for tests.
var hostname = os.Hostname

// applyDefaults fills every value the document left out.
func (c *Config) applyDefaults() {
	g := &c.Gateway
	if g.ID == "" {
		g.ID = defaultID()
	}
	if g.StateDir == "" {
		g.StateDir = os.Getenv(EnvStateDir)
	}
	if g.StateDir == "" {
		g.StateDir = localStateDir
		if fi, err := os.Stat(permDir); err == nil && fi.IsDir() {
			g.StateDir = filepath.Join(permDir, permStateDir)
		}
	}
	if abs, err := filepath.Abs(g.StateDir); err == nil {
		g.StateDir = abs
	}
	if g.ConfigGrace == 0 {
		g.ConfigGrace = 2 * time.Minute
	}
	if g.StatusInterval == 0 {
		g.StatusInterval = defaultStatusInterval
	}

	b := &c.Broker
	if b.Managed == nil {
		b.Managed = ptr(true)
	}
	if *b.Managed {
		if b.Listen == "" {
			b.Listen = cmp.Or(os.Getenv(EnvBrokerListen), defaultBrokerListen)
		}
		host, _, err := net.SplitHostPort(b.Listen)
		if err == nil && !LoopbackHost(host) && b.Username == "" && b.Password == "" && b.PasswordFile == "" {
			if u, f := os.Getenv(EnvBrokerUsername), os.Getenv(EnvBrokerPasswordFile); u != "" && f != "" {
				b.Username, b.PasswordFile = u, f
			}
		}
		if b.Binary == "" {
			b.Binary = defaultBrokerBinary
		}
		if b.AutosaveInterval == 0 {
			b.AutosaveInterval = defaultAutosave
		}
	}
	if br := b.Bridge; br != nil {
		if br.ClientID == "" {
			br.ClientID = clientIDTemplatePrefix + g.ID
		}
		if br.TopicsOut == nil {
			br.TopicsOut = []string{defaultBridgeTopicOut}
		}
		if br.QoS == nil {
			br.QoS = ptr(defaultQoS)
		}
		if br.Keepalive == 0 {
			br.Keepalive = defaultBridgeKeepalive
		}
	}

	e := &c.Export
	if e.Topic == "" {
		e.Topic = defaultTopic
	}
	if e.QoS == nil {
		e.QoS = ptr(defaultQoS)
	}
	if e.ClientID == "" {
		e.ClientID = clientIDTemplatePrefix + g.ID
	}
	if e.QueueLimit == 0 {
		e.QueueLimit = defaultQueueLimit
	}

	ck := &c.Clock
	if ck.SetSystem == nil {
		fi, err := os.Stat(permDir)
		ck.SetSystem = ptr(err == nil && fi.IsDir())
	}
	if ck.Sources == nil {
		ck.Sources = []string{string(timesource.System)}
		if *ck.SetSystem {
			ck.Sources = []string{timesource.DefaultNTP, string(timesource.RTC)}
		}
	}
	if ck.Hold == 0 {
		ck.Hold = timesource.DefaultHold
	}
	if ck.Interval == 0 {
		ck.Interval = timesource.DefaultInterval
	}

	r := &c.RPC
	if r.Listen == "" {
		r.Listen = defaultRPCListen
	}
	if r.MaxBody == 0 {
		r.MaxBody = defaultMaxBody
	}

	for i := range c.Connectors {
		cn := &c.Connectors[i]
		if cn.Enabled == nil {
			cn.Enabled = ptr(true)
		}
		for j := range cn.Devices {
			d := &cn.Devices[j]
			if d.Interval == 0 {
				d.Interval = defaultInterval
			}
			if d.Timeout == 0 {
				d.Timeout = min(d.Interval, maxDefaultTimeout)
			}
			for k := range d.Channels {
				if db := d.Channels[k].Deadband; db != nil && db.MaxSilence == nil {
					db.MaxSilence = ptr(defaultMaxSilence)
				}
			}
		}
	}
}

// genericHosts are host names that every device of a kind shares (an
// appliance image, a fresh Raspberry Pi OS): no identity.
var genericHosts = map[string]bool{"": true, "gokrazy": true, "localhost": true, "raspberrypi": true, "osgate": true}

// machineID names this machine when its host name does not: the board's
// serial number (a Raspberry Pi's device tree has one), else systemd's
// machine id. "" when neither exists.
var machineID = func() string {
	for _, p := range []string{"/sys/firmware/devicetree/base/serial-number", "/etc/machine-id"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.ToLower(strings.Trim(string(b), "\x00\n\t "))
		s = strings.TrimLeft(s, "0")
		if len(s) > 8 {
			s = s[len(s)-8:]
		}
		if s != "" {
			return s
		}
	}
	return ""
}

// defaultID is the host name made safe for a topic level: every character
// other than a letter, a digit, "-", "_" or "." becomes "-". Where the
// host name is one every device of an image shares ("gokrazy"), it is
// "gw-" and the board's serial number instead, so one image serves a fleet
// with a distinct id per device.
func defaultID() string {
	h, err := hostname()
	if err != nil {
		h = ""
	}
	if genericHosts[strings.ToLower(h)] {
		if m := machineID(); m != "" {
			return "gw-" + m
		}
		if h == "" {
			return defaultGatewayID
		}
	}
	id := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, h)
	if strings.Trim(id, "-.") == "" {
		return defaultGatewayID
	}
	return id
}

func ptr[T any](v T) *T { return &v }
