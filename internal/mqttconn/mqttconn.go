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
	wait := first
	for attempt := 1; ; attempt++ {
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
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		wait = min(wait*2, max)
	}
}
