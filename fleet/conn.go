package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Conn is the operator's connection to the cloud broker.
type Conn struct {
	client mqtt.Client
	s      *Settings

	mu   sync.Mutex
	subs []subscription // made again after a reconnection
}

type subscription struct {
	filters map[string]byte
	handle  mqtt.MessageHandler
}

// connectTimeout bounds the first connection to the cloud broker.
const connectTimeout = 20 * time.Second

// Dial connects to the cloud broker with the settings' credentials and
// TLS (a clean session: the fleet tool keeps nothing on the broker).
func Dial(ctx context.Context, s *Settings) (*Conn, error) {
	pw, err := s.password()
	if err != nil {
		return nil, err
	}
	id := s.ClientID
	if id == "" {
		id = "osgate-fleet-" + randomHex(6)
	}
	opts := mqtt.NewClientOptions().AddBroker(s.Broker).SetClientID(id).
		SetUsername(s.Username).SetPassword(pw).
		SetCleanSession(true).SetOrderMatters(false).
		SetConnectTimeout(connectTimeout).SetWriteTimeout(30 * time.Second).
		SetKeepAlive(30 * time.Second).SetAutoReconnect(true).SetConnectRetry(false).
		SetMaxReconnectInterval(10 * time.Second)
	if !s.Plain() {
		tc, err := s.Client.Load()
		if err != nil {
			return nil, fmt.Errorf("cloud broker TLS: %w", err)
		}
		opts.SetTLSConfig(tc)
	}
	c := &Conn{s: s}
	// A clean session forgets the subscriptions when the link drops: a
	// command that runs for hours (a rollout) makes them again, and the
	// broker sends the retained documents anew.
	opts.SetOnConnectHandler(func(mqtt.Client) { c.resubscribe() })
	c.client = mqtt.NewClient(opts)
	tok := c.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.client.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect to the cloud broker %s: %w (check broker, username, password and ca_file in the fleet settings)", s.Broker, err)
	}
	return c, nil
}

// Close disconnects.
func (c *Conn) Close() { c.client.Disconnect(250) }

// subscribe subscribes filters at QoS qos and waits for the broker's
// answer; a refused filter (the broker's ACL) is an error naming it.
func (c *Conn) subscribe(ctx context.Context, qos byte, handle mqtt.MessageHandler, filters ...string) error {
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = qos
	}
	c.mu.Lock()
	c.subs = append(c.subs, subscription{m, handle})
	c.mu.Unlock()
	tok := c.client.SubscribeMultiple(m, handle)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe to %v on the cloud broker: %w", filters, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("the cloud broker refused the subscription to %s: allow the fleet user to read it (docs/fleet.md)", f)
			}
		}
	}
	return nil
}

// resubscribe makes every subscription again after a reconnection (the
// first connection has none yet). A refusal leaves that part of the view
// stale: a rollout step then times out and halts.
func (c *Conn) resubscribe() {
	c.mu.Lock()
	subs := slices.Clone(c.subs)
	c.mu.Unlock()
	for _, sub := range subs {
		c.client.SubscribeMultiple(sub.filters, sub.handle)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
