package broker

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/tlsconf"
)

func confText(t *testing.T, cfg config.Broker) string {
	t.Helper()
	text, err := conf(cfg, "gw-0001", "/perm/osgate", Access{}, limits{messages: 123456, bytes: 99 << 20})
	if err != nil {
		t.Fatalf("conf: %v", err)
	}
	return string(text)
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("conf lacks line %q:\n%s", l, text)
		}
	}
}

func TestConfDefaults(t *testing.T) {
	text := confText(t, config.Broker{})
	wantLines(t, text,
		"listener 1883 127.0.0.1",
		"allow_anonymous true",
		"password_file /perm/osgate/mosquitto/passwd",
		"acl_file /perm/osgate/mosquitto/acl",
		"message_size_limit 1048576",
		"persistence true",
		"persistence_location /perm/osgate/mosquitto/",
		"autosave_interval 5",
		"max_queued_messages 123456",
		"max_queued_bytes 103809024",
		"max_inflight_messages 64",
		"log_dest stderr",
	)
	if strings.Contains(text, "connection ") {
		t.Errorf("default conf has a bridge:\n%s", text)
	}
}

func TestConfOverrides(t *testing.T) {
	text := confText(t, config.Broker{
		Listen: "0.0.0.0:8883", Username: "gw", Password: "pw",
		AutosaveInterval: 1500 * time.Millisecond, MaxQueuedMessages: 42, MaxQueuedBytes: 4096,
	})
	wantLines(t, text,
		"listener 8883 0.0.0.0",
		"allow_anonymous false",
		"password_file /perm/osgate/mosquitto/passwd",
		"acl_file /perm/osgate/mosquitto/acl",
		"autosave_interval 2",
		"max_queued_messages 42",
		"max_queued_bytes 4096",
	)
}

func TestConfBridge(t *testing.T) {
	qos := 2
	text := confText(t, config.Broker{Bridge: &config.Bridge{
		Address: "cloud.example.com:8883", Username: "u", Password: "p",
		TopicsOut: []string{"telemetry/#", "events/#"}, TopicsIn: []string{"commands/gw-0001/#"}, QoS: &qos,
		Keepalive: 4500 * time.Millisecond,
		Client:    tlsconf.Client{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/c.key"},
	}})
	wantLines(t, text,
		"connection osgate-cloud",
		"address cloud.example.com:8883",
		"remote_clientid osgate-gw-0001",
		"cleansession false",
		"bridge_protocol_version mqttv311",
		"try_private true",
		"notifications true",
		"notification_topic status/gw-0001/bridge",
		"keepalive_interval 5",
		"remote_username u",
		"remote_password p",
		"bridge_cafile /etc/ca.pem",
		"bridge_certfile /etc/c.pem",
		"bridge_keyfile /etc/c.key",
		"topic telemetry/# out 2",
		"topic events/# out 2",
		"topic commands/gw-0001/# in 2",
		"topic status/gw-0001 out 0",
		"topic status/gw-0001/devices/# out 0",
		"restart_timeout "+bridgeRestart,
	)
	if strings.Contains(text, "bridge_insecure") {
		t.Errorf("bridge_insecure without insecure set:\n%s", text)
	}
	// Defaults: telemetry out at QoS 1, the stable client id.
	text = confText(t, config.Broker{Bridge: &config.Bridge{Address: "10.0.0.1:1883", ClientID: "site-{gateway}", Client: tlsconf.Client{TLS: new(false)}}})
	wantLines(t, text, "topic telemetry/# out 1", "remote_clientid site-gw-0001", "keepalive_interval 60")
	if strings.Contains(text, "bridge_cafile") || strings.Contains(text, "remote_username") {
		t.Errorf("TLS or credentials in a plain bridge:\n%s", text)
	}
	text = confText(t, config.Broker{Bridge: &config.Bridge{Address: "h:1", Client: tlsconf.Client{CAFile: "/ca", Insecure: true}}})
	wantLines(t, text, "bridge_insecure true")
}

func TestConfRejects(t *testing.T) {
	bad := map[string]config.Broker{
		"open listener, no auth":     {Listen: "0.0.0.0:1883"},
		"listen without port":        {Listen: "127.0.0.1"},
		"port out of range":          {Listen: "127.0.0.1:70000"},
		"bridge without port":        {Bridge: &config.Bridge{Address: "cloud", Client: tlsconf.Client{TLS: new(false)}}},
		"bridge qos 3":               {Bridge: &config.Bridge{Address: "h:1", QoS: new(3), Client: tlsconf.Client{TLS: new(false)}}},
		"topic with a space":         {Bridge: &config.Bridge{Address: "h:1", TopicsOut: []string{"a b"}, Client: tlsconf.Client{TLS: new(false)}}},
		"cert without key":           {Bridge: &config.Bridge{Address: "h:1", Client: tlsconf.Client{CAFile: "/ca", CertFile: "/c"}}},
		"insecure without TLS":       {Bridge: &config.Bridge{Address: "h:1", Client: tlsconf.Client{Insecure: true}}},
		"newline in remote user":     {Bridge: &config.Bridge{Address: "h:1", Username: "u\naddress evil:1", Client: tlsconf.Client{TLS: new(false)}}},
		"empty password with user":   {Bridge: &config.Bridge{Address: "h:1", Username: "u", Client: tlsconf.Client{TLS: new(false)}}},
		"bridge address with space":  {Bridge: &config.Bridge{Address: "h:1\nconnection x", Client: tlsconf.Client{TLS: new(false)}}},
		"anonymous beyond loopback":  {Listen: "0.0.0.0:1883", Username: "u", Password: "p", AnonymousRead: new(true)},
		"bridge state sent back":     {Bridge: &config.Bridge{Address: "h:1", TopicsOut: []string{"status/#"}, Client: tlsconf.Client{TLS: new(false)}}},
		"bridge without TLS, unsaid": {Bridge: &config.Bridge{Address: "h:1"}},
	}
	for name, cfg := range bad {
		if text, err := conf(cfg, "gw", "/s", Access{}, limits{1, 1}); err == nil {
			t.Errorf("%s: accepted:\n%s", name, text)
		}
	}
}

func TestQueueLimitsFloors(t *testing.T) {
	l := queueLimits(t.TempDir() + "/not/yet/there")
	if l.messages < minQueuedMsgs || l.bytes < minQueuedBytes || l.bytes > maxQueuedBytes {
		t.Fatalf("queueLimits = %+v outside the floors and ceiling", l)
	}
}

func TestPasswordFile(t *testing.T) {
	text, err := passwordFile(Login{"gw", "secret"}, Login{"osgate-rpc", "other"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "gw:$7$101$") || strings.Count(lines[0], "$") != 4 || !strings.HasPrefix(lines[1], "osgate-rpc:$7$101$") {
		t.Fatalf("password file %q", text)
	}
	for _, user := range []string{"a:b", "", " a", "a\nb"} {
		if _, err := passwordFile(Login{user, "x"}); err == nil {
			t.Errorf("user name %q was accepted", user)
		}
	}
}

func TestConfAnonymous(t *testing.T) {
	wantLines(t, confText(t, config.Broker{AnonymousRead: new(false)}), "allow_anonymous false")
	wantLines(t, confText(t, config.Broker{Username: "app", Password: "p"}), "allow_anonymous true")
	wantLines(t, confText(t, config.Broker{Listen: "[::1]:1883", AnonymousRead: new(true)}), "allow_anonymous true")
}

func TestDialAddr(t *testing.T) {
	b := New(config.Broker{Listen: "0.0.0.0:1999"}, "gw", t.TempDir(), nil)
	if got := b.URL(); got != "tcp://127.0.0.1:1999" {
		t.Fatalf("URL = %s", got)
	}
	b = New(config.Broker{}, "gw", t.TempDir(), nil)
	if got := b.URL(); got != "tcp://"+net.JoinHostPort("127.0.0.1", "1883") {
		t.Fatalf("default URL = %s", got)
	}
}

// TestConfUser: run by root (the appliance) Mosquitto is told to stay
// root, since it would otherwise switch to a user who cannot write the
// state dir; run by anyone else (the systemd unit's osgate user) it gets
// no user line and runs as that user.
func TestConfUser(t *testing.T) {
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 0 }
	wantLines(t, confText(t, config.Broker{}), "user root")
	geteuid = func() int { return 995 }
	if text := confText(t, config.Broker{}); strings.Contains(text, "\nuser ") {
		t.Errorf("a user line for a non-root osgate:\n%s", text)
	}
}
