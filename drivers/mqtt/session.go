package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/backoff"
	"github.com/osgate/osgate/internal/lru"
)

// session is the client of one broker for the life of one Listen.
type session struct {
	c      *Connector
	b      *broker
	log    *slog.Logger
	emit   func(...core.Reading) error
	client paho.Client

	// fail ends the Listen this session belongs to.
	fail func(error)
	// truncated are messages over max_payload whose payload the
	// connection skipped (limit.go).
	truncated *truncated

	// Used only by paho's router goroutine (messages are handled in order,
	// one at a time).
	scratch mapping.Scratch
	failed  bool // emit refused a reading: take nothing more
}

func (c *Connector) newSession(b *broker, emit func(...core.Reading) error) (*session, error) {
	tc, err := b.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &session{c: c, b: b, emit: emit, log: c.log.With("broker", b.Name, "url", b.URL),
		truncated: lru.New[truncKey, int](maxTruncated, lru.Metrics{})}
	o := paho.NewClientOptions().
		AddBroker(b.URL).
		SetClientID(b.ClientID).
		SetUsername(b.Username).
		SetPassword(b.Password).
		SetCleanSession(b.clean).
		SetKeepAlive(b.KeepAlive).
		SetPingTimeout(b.KeepAlive/2 + time.Second).
		SetConnectTimeout(b.ConnectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(b.MaxReconnectInterval).
		SetConnectRetry(false). // the first connection is retried by run, with back-off
		SetOrderMatters(true).  // one message at a time, in order: back-pressure reaches the broker
		SetAutoAckDisabled(true).
		SetResumeSubs(false).
		SetDefaultPublishHandler(s.handle).
		SetCustomOpenConnectionFn(s.dial).
		SetOnConnectHandler(s.connected).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.log.Warn("connection to field broker lost; reconnecting", "err", err)
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			s.log.Debug("reconnecting to field broker")
		})
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	s.client = paho.NewClient(o)
	return s, nil
}

// run connects (retrying with back-off until ctx ends), then waits for ctx
// and disconnects. paho reconnects a lost connection by itself.
func (s *session) run(ctx context.Context) {
	retry := backoff.Policy{First: 250 * time.Millisecond, Max: s.b.MaxReconnectInterval}
	for failures := 1; ; failures++ {
		tok := s.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			s.client.Disconnect(0)
			return
		}
		err := tok.Error()
		if err == nil {
			break
		}
		wait := retry.Delay(failures)
		s.log.Warn("cannot connect to field broker; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	<-ctx.Done()
	s.client.Disconnect(250)
	s.log.Info("disconnected from field broker")
}

// connected (re)subscribes every filter. It runs on its own goroutine
// after each connection.
func (s *session) connected(cl paho.Client) {
	filters := make(map[string]byte, len(s.c.subs))
	for _, f := range s.c.subs {
		filters[f] = s.b.qos
	}
	tok := cl.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(s.b.ConnectTimeout + s.b.KeepAlive) {
		s.log.Warn("field broker did not answer the subscription in time; it is retried on the next connection")
		return
	}
	if err := tok.Error(); err != nil {
		s.log.Error("subscribe failed", "err", err)
		return
	}
	st, _ := tok.(*paho.SubscribeToken)
	var refused []string
	if st != nil {
		for f, code := range st.Result() {
			if code > 2 {
				refused = append(refused, f)
			}
		}
	}
	if len(refused) > 0 {
		s.log.Error("field broker refused subscriptions (check its ACL)", "filters", refused)
	}
	s.log.Info("connected to field broker and subscribed", "filters", len(filters)-len(refused))
}

// handle maps one message and emits its readings. A QoS 1/2 message is
// acknowledged only after every reading was accepted; when emit fails
// (osgate stopping) it stays unacknowledged and the broker sends it again
// on the next connection. A message that gives no readings is counted,
// logged once per topic, and acknowledged: it would never give any.
func (s *session) handle(_ paho.Client, m paho.Message) {
	if s.failed {
		return // unacknowledged: sent again to the next session
	}
	if len(m.Payload()) == 0 {
		if size, ok := s.truncated.Remove(truncKey{m.Topic(), m.MessageID()}); ok {
			s.c.rejects.Reject(m.Topic(), mapping.ReasonTooLarge, fmt.Errorf("payload of %d bytes is larger than max_payload (%d bytes)", size, s.c.maxPayload))
			m.Ack()
			return
		}
	}
	rs, dropped, err := s.c.set.Readings(m.Topic(), m.Payload(), time.Now(), &s.scratch)
	if dropped > 0 && err == nil {
		s.c.rejects.Reject(m.Topic(), mapping.ReasonUnconfigured, errors.New("some readings are of devices or channels that are not configured"))
	}
	if err != nil {
		reason := mapping.ReasonPayload
		var rj *mapping.Reject
		if errors.As(err, &rj) {
			reason = rj.Reason
		}
		s.c.rejects.Reject(m.Topic(), reason, err)
		m.Ack()
		return
	}
	if err := s.emit(rs...); err != nil {
		// Acknowledging the next messages would leave this one in
		// flight until a reconnection; ending Listen makes the core
		// start a new session, to which the broker sends it again.
		s.failed = true
		s.fail(fmt.Errorf("emit refused the readings of %s (the message stays unacknowledged): %w", m.Topic(), err))
		return
	}
	m.Ack()
}
