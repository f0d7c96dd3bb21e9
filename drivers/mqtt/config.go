package mqtt

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/tlsconf"
)

// settings is the connector's "settings" object.
type settings struct {
	Brokers  []brokerSettings  `json:"brokers" strict:"required"`
	Mappings []mappingSettings `json:"mappings" strict:"required"`
	// OnlyConfigured drops (and counts) readings of devices, and of
	// channels of devices with channels, that are not configured.
	OnlyConfigured bool `json:"only_configured"`
	// MaxPayload bounds a message's payload in bytes (default 1 MiB):
	// larger ones are skipped as they arrive, counted and acknowledged.
	MaxPayload int `json:"max_payload"`
	// MaxChannels bounds the readings of one message (default 10000).
	MaxChannels int `json:"max_channels"`
}

const (
	defaultMaxPayload = 1 << 20
	// maxMaxPayload is MQTT's own limit; maxMaxChannels the most
	// max_channels may be.
	maxMaxPayload  = 256 << 20
	maxMaxChannels = 1000000
)

// brokerSettings is one field broker to subscribe to.
type brokerSettings struct {
	// Name tells brokers apart in logs and the default client id.
	Name string `json:"name"`
	// URL is tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://
	// HOST:PORT (ws and wss with a path, e.g. /mqtt).
	URL      string `json:"url" strict:"required"`
	ClientID string `json:"client_id"`
	Username string `json:"username"`
	Password string `json:"password"`
	// QoS of the subscriptions: 0, 1 (default) or 2.
	QoS *int `json:"qos"`
	// PersistentSession (default true) keeps the subscriptions and the
	// queued QoS 1/2 messages on the broker while osgate is away.
	PersistentSession *bool `json:"persistent_session"`
	// TLS settings (internal/tlsconf): for ssl/tls/mqtts/wss URLs. "tls"
	// must be false for a plain URL (tcp, mqtt, ws): credentials and
	// readings then cross the network in clear text, which the config
	// says on purpose.
	tlsconf.Client

	KeepAlive            time.Duration `json:"keep_alive"`
	ConnectTimeout       time.Duration `json:"connect_timeout"`
	MaxReconnectInterval time.Duration `json:"max_reconnect_interval"`
}

// mappingSettings is one mapping: a topic filter and mapping.Spec's keys.
type mappingSettings struct {
	Topic string          `json:"topic" strict:"required"`
	Rest  json.RawMessage `strict:"rest"`
}

// broker is a checked brokerSettings.
type broker struct {
	brokerSettings
	scheme string
	qos    byte
	clean  bool
}

var schemes = map[string]bool{ // scheme → uses TLS
	"tcp": false, "mqtt": false, "ws": false,
	"ssl": true, "tls": true, "mqtts": true, "wss": true,
}

// parseSettings decodes and checks the settings; errors carry paths
// relative to the connector ("settings.brokers[1].url").
func parseSettings(raw json.RawMessage, connector string) (settings, []broker, []*mapping.Mapping, strict.Errors) {
	var es strict.Errors
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var s settings
	// Decode fills in what it can, so the checks below still run and every
	// problem is reported at once.
	es.Merge("settings", strict.Decode(raw, &s))
	if len(s.Brokers) == 0 {
		es.Add("settings.brokers", "must list at least one broker")
	}
	names := map[string]int{}
	ids := map[string]int{}
	var brokers []broker
	for i, bs := range s.Brokers {
		at := strict.Index("settings.brokers", i)
		if bs.Name == "" {
			bs.Name = strconv.Itoa(i)
		}
		if j, dup := names[bs.Name]; dup {
			es.Add(at+".name", "%q is already the name of broker %d", bs.Name, j)
		}
		names[bs.Name] = i
		if bs.ClientID == "" {
			bs.ClientID = "osgate-" + connector + "-" + bs.Name
		}
		if j, dup := ids[bs.ClientID]; dup {
			es.Add(at+".client_id", "%q is already the client id of broker %d; two sessions with one id throw each other off", bs.ClientID, j)
		}
		ids[bs.ClientID] = i
		b, errs := checkBroker(bs)
		es.Merge(at, errs.Err())
		brokers = append(brokers, b)
	}
	switch {
	case s.MaxPayload == 0:
		s.MaxPayload = defaultMaxPayload
	case s.MaxPayload < 0 || s.MaxPayload > maxMaxPayload:
		es.Add("settings.max_payload", "must be from 1 to %d bytes", maxMaxPayload)
	}
	if s.MaxChannels < 0 || s.MaxChannels > maxMaxChannels {
		es.Add("settings.max_channels", "must be from 1 to %d", maxMaxChannels)
	}
	if len(s.Mappings) == 0 {
		es.Add("settings.mappings", "must list at least one mapping")
	}
	var maps []*mapping.Mapping
	for i, ms := range s.Mappings {
		at := strict.Index("settings.mappings", i)
		f, err := mapping.ParseFilter(ms.Topic)
		if err != nil {
			es.Add(at+".topic", "%v", err)
			continue
		}
		var spec mapping.Spec
		if err := strict.Decode(ms.Rest, &spec); err != nil {
			es.Merge(at, strict.WithKeys(err, strict.Keys(mappingSettings{})...))
		}
		m, err := mapping.Compile(f, spec, mapping.Options{MaxReadings: s.MaxChannels})
		if err != nil {
			es.Merge(at, err)
			continue
		}
		maps = append(maps, m)
	}
	return s, brokers, maps, es
}

func checkBroker(bs brokerSettings) (broker, strict.Errors) {
	var es strict.Errors
	b := broker{brokerSettings: bs, qos: 1, clean: false}
	u, err := url.Parse(bs.URL)
	switch {
	case err != nil:
		es.Add("url", "is not a URL: %v", err)
	case u.Host == "" || u.Port() == "":
		es.Add("url", "%q needs a host and a port, e.g. tcp://192.168.1.10:1883", redact.URL(bs.URL))
	default:
		if _, ok := schemes[u.Scheme]; !ok {
			es.Add("url", "scheme %q: use tcp, mqtt, ssl, tls, mqtts, ws or wss%s", u.Scheme, strict.DidYouMean(u.Scheme, []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}))
		}
		if u.User != nil {
			es.Add("url", "must not carry credentials: use username and password")
		}
		b.scheme = u.Scheme
	}
	secure := schemes[b.scheme]
	if b.scheme != "" {
		if !secure && bs.TLS == nil {
			es.Add("url", "%s:// is not encrypted: the broker's password and the readings cross the network in clear text; use ssl://, mqtts:// or wss://, or set \"tls\": false to do that on purpose", b.scheme)
		}
		bs.CheckScheme(&es, "", b.scheme, secure, "ssl://, mqtts:// or wss://", "tcp://")
		if !secure {
			bs.CheckPlain(&es, "", fmt.Sprintf("needs a TLS URL (ssl://, mqtts:// or wss://), not %s://", b.scheme))
		}
	}
	bs.Check(&es, "")
	if bs.QoS != nil {
		if *bs.QoS < 0 || *bs.QoS > 2 {
			es.Add("qos", "must be 0, 1 or 2, not %d", *bs.QoS)
		} else {
			b.qos = byte(*bs.QoS)
		}
	}
	if bs.PersistentSession != nil {
		b.clean = !*bs.PersistentSession
	}
	if bs.Password != "" && bs.Username == "" {
		es.Add("password", "needs a username")
	}
	durations := []struct {
		key      string
		v        *time.Duration
		def, min time.Duration
	}{
		{"keep_alive", &b.KeepAlive, 30 * time.Second, time.Second},
		{"connect_timeout", &b.ConnectTimeout, 10 * time.Second, 100 * time.Millisecond},
		{"max_reconnect_interval", &b.MaxReconnectInterval, 30 * time.Second, 100 * time.Millisecond},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < d.min:
			es.Add(d.key, "must be at least %s", d.min)
		}
	}
	return b, es
}

// String names the broker in logs: its name and URL.
func (b *broker) String() string { return fmt.Sprintf("%s (%s)", b.Name, b.URL) }
