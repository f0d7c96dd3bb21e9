// Package mqttconn holds what osgate's MQTT clients of the local broker
// (the export, the cloud RPC responder) share: their paho options and
// their first connection. paho's ConnectRetry loses messages published
// before the first connection (measured with paho v1.5.1 and Mosquitto
// 2.0.11), so the clients turn it off and make that first connection with
// ConnectFirst; later outages are paho's auto-reconnect's (or the
// client's own).
package mqttconn

import (
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/backoff"
)

// Options returns the paho options every client of the local broker
// starts from: a fixed client id and a persistent session (the broker
// keeps what the client is away for), an in-memory store (what must
// survive a restart is the client's to keep, e.g. the export spool),
// ConnectRetry off (see ConnectFirst), and 10 s connect and write
// timeouts with a 30 s keepalive.
func Options(url, clientID, username, password string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(clientID).
		SetUsername(username).
		SetPassword(password).
		SetCleanSession(false).
		SetStore(mqtt.NewMemoryStore()).
		SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second)
}

// ConnectFirst connects client, retrying with back-off from first up to
// max until it works (true) or ctx ends (false). warn is called on the
// first failed attempt and on every tenth.
func ConnectFirst(ctx context.Context, client mqtt.Client, first, max time.Duration, warn func(attempt int, err error)) bool {
	return ConnectWake(ctx, client, first, max, nil, warn)
}

// ConnectWake is ConnectFirst that also tries again at once, without
// waiting out the back-off, when the channel wake returns is closed (e.g.
// the managed broker reports that it listens again). wake is called before
// each attempt, so a wake-up during the attempt is not missed; nil wake, or
// a nil channel, waits the back-off only.
func ConnectWake(ctx context.Context, client mqtt.Client, first, max time.Duration, wake func() <-chan struct{}, warn func(attempt int, err error)) bool {
	retry := backoff.Policy{First: first, Max: max}
	failures := 0 // since the last wake-up
	for attempt := 1; ; attempt++ {
		var woken <-chan struct{}
		if wake != nil {
			woken = wake()
		}
		tok := client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return false
		}
		if tok.Error() == nil {
			return true
		}
		if attempt == 1 || attempt%10 == 0 {
			warn(attempt, tok.Error())
		}
		failures++
		t := time.NewTimer(retry.Delay(failures))
		select {
		case <-t.C:
		case <-woken:
			t.Stop()
			failures = 0
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}
