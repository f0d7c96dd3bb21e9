package export

import (
	"context"
	"errors"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/mqttconn"
)

const (
	flushEvery = 250 * time.Millisecond // ack offset, health, metrics
	syncEvery  = time.Second            // fsync of the spool segment
)

// inflight is a message handed to the MQTT client during connection
// epoch epoch.
type inflight struct {
	e     entry
	tok   mqtt.Token
	epoch uint64
}

// Run connects to the broker and sends spooled messages until ctx ends,
// then keeps sending for up to StopGrace while connected, disconnects and
// closes the spool. It owns the MQTT client and every goroutine it starts.
// Run may be called once; Publish returns ErrClosed after it returned.
func (s *Sink) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("export: Run called twice")
	}
	client := mqtt.NewClient(s.clientOptions())
	work, stop := context.WithCancel(context.Background())
	handed := make(chan inflight, s.opts.InFlight)
	var wg sync.WaitGroup
	wg.Go(func() { s.flushLoop(work, client) })
	wg.Go(func() {
		if s.connectFirst(work, client) {
			s.sendLoop(work, client, handed)
		}
	})
	wg.Go(func() { s.ackLoop(work, client, handed) })

	<-ctx.Done()
	s.drain()
	stop()
	wg.Wait()
	client.Disconnect(250)
	s.setConnected(false)
	err := s.close()
	s.report()
	if n := s.Queued(); n > 0 {
		s.log.Info("export: stopped with messages still queued; the next start sends them", "queued", n)
	}
	return err
}

func (s *Sink) clientOptions() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(s.opts.URL).
		SetClientID(s.opts.ClientID).
		SetUsername(s.opts.Username).
		SetPassword(s.opts.Password).
		SetCleanSession(false).
		// The spool, not the client's store, keeps in-flight messages across
		// a restart (see ackLoop); the memory store serves resends within
		// one run.
		SetStore(mqtt.NewMemoryStore()).
		SetAutoReconnect(true).
		SetConnectRetry(false). // see Sink: connectFirst retries instead
		SetMaxReconnectInterval(s.opts.RetryMax).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetMaxResumePubInFlight(s.opts.InFlight).
		SetOnConnectHandler(func(c mqtt.Client) {
			s.log.Info("export: connected to broker")
			s.setConnected(true)
			if w := s.opts.Watch; w != nil {
				c.Subscribe(w.Topic, 0, func(_ mqtt.Client, m mqtt.Message) { w.Handle(m.Payload()) })
			}
			if s.connects.Add(1) > 1 && s.opts.OnReconnect != nil {
				s.opts.OnReconnect()
			}
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			// Runs before the client resends its in-flight messages, which
			// completes their old tokens without an acknowledgement.
			s.epoch.Add(1)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			s.epoch.Add(1)
			s.log.Warn("export: connection to broker lost; spooling until it is back", "error", err)
			s.setConnected(false)
		})
	if s.opts.TLS != nil {
		o.SetTLSConfig(s.opts.TLS)
	}
	if w := s.opts.Will; w != nil {
		o.SetBinaryWill(w.Topic, w.Payload, s.opts.QoS, true)
	}
	return o
}

// connectFirst tries to connect until it succeeds or ctx ends. Later
// outages are the client's auto-reconnect's to handle.
func (s *Sink) connectFirst(ctx context.Context, client mqtt.Client) bool {
	return mqttconn.ConnectFirst(ctx, client, 100*time.Millisecond, s.opts.RetryMax, func(attempt int, err error) {
		s.log.Warn("export: cannot connect to broker; spooling messages and retrying", "attempt", attempt, "error", err)
	})
}

// sendLoop hands waiting messages to the client while it is connected,
// keeping at most InFlight unacknowledged (handed's capacity).
func (s *Sink) sendLoop(ctx context.Context, client mqtt.Client, handed chan<- inflight) {
	for {
		select {
		case <-s.whenUp():
		case <-ctx.Done():
			return
		}
		e, ok := s.take(ctx)
		if !ok {
			return
		}
		epoch := s.epoch.Load()
		tok := s.send(client, e)
		select {
		case handed <- inflight{e: e, tok: tok, epoch: epoch}:
		case <-ctx.Done():
			return
		}
	}
}

// ackLoop waits for each handed message's token, in order, resends what
// failed, and acknowledges in the spool what the broker has.
//
// A token that succeeds counts only if the connection it was handed to is
// still the current one: when paho.mqtt.golang reconnects it resends its
// in-flight messages under new tokens and completes the old ones without
// error, before any acknowledgement. Such a message is published again
// (QoS 1 allows the duplicate) and stays in the spool until a token of the
// current connection succeeds, so a crash at any point resends it.
func (s *Sink) ackLoop(ctx context.Context, client mqtt.Client, handed <-chan inflight) {
	for {
		var m inflight
		select {
		case m = <-handed:
		case <-ctx.Done():
			return
		}
		for {
			select {
			case <-m.tok.Done():
			case <-ctx.Done():
				return
			}
			err := m.tok.Error()
			if err == nil && s.epoch.Load() == m.epoch {
				break
			}
			if err != nil {
				metrics.ExportErrors.Inc()
				topic, _ := m.e.target()
				s.log.Warn("export: publish failed; sending it again", "topic", topic, "error", err)
			}
			select {
			case <-s.whenUp():
			case <-ctx.Done():
				return
			}
			m.epoch = s.epoch.Load()
			m.tok = s.send(client, m.e)
		}
		s.acked(m.e.seq + 1)
		metrics.ExportMessages.Inc()
	}
}

// flushLoop saves the ack offset, prunes the spool, fsyncs it and reports
// health and metrics, until ctx ends. It also reconciles the connection
// state with the client's: paho runs its handlers in goroutines of their
// own, so a late "connection lost" could otherwise overwrite a newer
// "connected".
func (s *Sink) flushLoop(ctx context.Context, client mqtt.Client) {
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	lastSync := time.Now()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		if s.spool.saveAck() {
			s.spool.prune()
		}
		var f interface{ Sync() error }
		if time.Since(lastSync) >= syncEvery {
			if seg := s.spool.syncTarget(); seg != nil {
				f = seg
			}
			lastSync = time.Now()
		}
		s.mu.Unlock()
		if f != nil {
			// A segment closed meanwhile was fsynced when it was closed.
			_ = f.Sync()
		}
		if up := client.IsConnectionOpen(); up != s.Connected() {
			s.setConnected(up)
		} else {
			s.report()
		}
	}
}

// send hands one spooled message to the client: retained if it was
// published with PublishRetained or the sink retains everything.
func (s *Sink) send(client mqtt.Client, e entry) mqtt.Token {
	topic, retain := e.target()
	return client.Publish(topic, s.opts.QoS, retain || s.opts.Retain, e.payload)
}

// drain waits up to StopGrace for the queue to empty while connected.
func (s *Sink) drain() {
	deadline := time.Now().Add(s.opts.StopGrace)
	for s.Connected() && s.Queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// report publishes the export state to health and metrics.
func (s *Sink) report() {
	up, n := s.Connected(), s.Queued()
	if s.opts.Health != nil {
		s.opts.Health.Export(up, n, s.opts.QueueLimit)
	}
	metrics.ExportQueue.Set(float64(n))
	if up {
		metrics.ExportConnected.Set(1)
	} else {
		metrics.ExportConnected.Set(0)
	}
}
