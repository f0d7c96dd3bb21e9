// Package mqttconn holds what osgate's MQTT clients of the local broker
// share. paho's ConnectRetry loses messages published before the first
// connection (measured with paho v1.5.1 and Mosquitto 2.0.11), so the
// clients turn it off and make that first connection with ConnectFirst;
// later outages are paho's auto-reconnect's.
package mqttconn

import (
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

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
	wait := first
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
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			wait = min(wait*2, max)
		case <-woken:
			t.Stop()
			wait = first
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}
