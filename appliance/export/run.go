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
	flushEvery = 250 * time.Millisecond // state file, health, metrics after a change; between broker-save checks
	syncEvery  = time.Second            // fsync of the spool segment
	retryFirst = 100 * time.Millisecond // first pause between connection attempts
)

// inflight is a message handed to the MQTT client in round round, during
// connection epoch epoch, while broker process gen ran.
type inflight struct {
	e     entry
	tok   mqtt.Token
	round uint64
	epoch uint64
	gen   uint64
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
	direct := mqttconn.CoalesceURL(s.opts.URL)
	wg.Go(func() {
		if s.connect(work, client) {
			wg.Go(func() { s.reconnectLoop(work, client) })
			if direct {
				s.sendDirect(work)
			} else {
				s.sendLoop(work, client, handed)
			}
		}
	})
	if !direct {
		wg.Go(func() { s.ackLoop(work, client, handed) })
	}
	if s.opts.Broker != nil {
		wg.Go(func() { s.persistLoop(work) })
	}

	<-ctx.Done()
	s.drain(work)
	stop()
	wg.Wait()
	client.Disconnect(250)
	s.setConnected(false)
	err := s.close()
	s.report()
	if n := s.Queued(); n > 0 {
		s.log.Info("export: stopped with messages not yet safe in the broker; the next start sends them", "queued", n)
	}
	return err
}

func (s *Sink) clientOptions() *mqtt.ClientOptions {
	// The spool, not the client's memory store, keeps in-flight messages
	// across a restart (see ackLoop); the store serves resends within one
	// run.
	o := mqttconn.Options(s.opts.URL, s.opts.ClientID, s.opts.Username, s.opts.Password).
		// Run reconnects itself (reconnectLoop): paho's own reconnect waits
		// at least a second and backs off to RetryMax, even when the
		// managed broker is already back.
		SetAutoReconnect(false).
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
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			// Runs before the next Connect resends the in-flight messages,
			// which completes their old tokens without an acknowledgement.
			s.epoch.Add(1)
			s.log.Warn("export: connection to broker lost; spooling until it is back", "error", err)
			s.setConnected(false)
			select {
			case s.lost <- struct{}{}:
			default:
			}
		})
	if s.opts.TLS != nil {
		o.SetTLSConfig(s.opts.TLS)
	}
	if mqttconn.CoalesceURL(s.opts.URL) {
		// Many messages a second share a write(2) to the broker, and
		// the sink writes them itself (direct.go).
		mqttconn.CoalesceDirect(o, wireEvents{s})
	}
	if w := s.opts.Will; w != nil {
		o.SetBinaryWill(w.Topic, w.Payload, s.opts.QoS, true)
	}
	return o
}

// connect tries to connect until it succeeds or ctx ends, backing off from
// retryFirst to RetryMax, and at once when the managed broker starts. With
// a managed broker the first attempt waits until it first listens, so a
// normal start logs no failed attempt.
func (s *Sink) connect(ctx context.Context, client mqtt.Client) bool {
	var wake func() <-chan struct{}
	if s.opts.Broker != nil {
		wake = s.opts.Broker.NextStart
		select {
		case <-s.opts.Broker.Ready():
		case <-ctx.Done():
			return false
		}
	}
	return mqttconn.ConnectWake(ctx, client, retryFirst, s.opts.RetryMax, wake, func(attempt int, err error) {
		s.log.Warn("export: cannot connect to broker; spooling messages and retrying", "attempt", attempt, "error", err)
	})
}

// reconnectLoop connects again each time the connection is lost.
func (s *Sink) reconnectLoop(ctx context.Context, client mqtt.Client) {
	for {
		select {
		case <-s.lost:
		case <-ctx.Done():
			return
		}
		if client.IsConnectionOpen() {
			continue // a late notice of an older loss
		}
		if !s.connect(ctx, client) {
			return
		}
	}
}

// gen is the broker process running now (0 without a managed broker).
func (s *Sink) gen() uint64 {
	if s.opts.Broker == nil {
		return 0
	}
	return s.opts.Broker.Generation()
}

// sendLoop hands waiting messages to the client while it is connected,
// keeping at most InFlight unacknowledged (handed's capacity). It takes
// as many waiting messages at once as the window has room for.
func (s *Sink) sendLoop(ctx context.Context, client mqtt.Client, handed chan<- inflight) {
	var batch []entry
	for {
		select {
		case <-s.whenUp():
		case <-ctx.Done():
			return
		}
		var round uint64
		var ok bool
		batch, round, ok = s.take(ctx, batch[:0], cap(handed)-len(handed))
		if !ok {
			return
		}
		// A broker process recorded before the message is handed can
		// only be older than the one that acknowledges it: then await
		// sends the message again.
		gen := s.gen()
		for _, e := range batch {
			m := inflight{e: e, round: round, epoch: s.epoch.Load(), gen: gen}
			m.tok = s.send(client, e)
			select {
			case handed <- m:
			case <-ctx.Done():
				return
			}
		}
		clear(batch)
	}
}

// ackBatch bounds how many acknowledgements ackLoop gathers before it
// records them.
const ackBatch = 256

// ackLoop waits for each handed message's token, in order, resends what
// failed, and records what the broker acknowledged: the tokens that are
// complete when it looks are recorded together, under one lock, before
// it waits for the next.
//
// A token that succeeds counts only if the connection it was handed to is
// still the current one: when paho.mqtt.golang reconnects it resends its
// in-flight messages under new tokens and completes the old ones without
// error, before any acknowledgement. Such a message is published again
// (QoS 1 allows the duplicate) and stays in the spool until a token of the
// current connection succeeds, so a crash at any point resends it.
//
// With a managed broker it counts only if the broker process that runs
// after the acknowledgement is the one that ran before the message was
// handed: then that process acknowledged it, and a save it makes later
// holds it (see checkpoint).
func (s *Sink) ackLoop(ctx context.Context, client mqtt.Client, handed <-chan inflight) {
	var acks []ack
	record := func() {
		if len(acks) > 0 {
			s.acked(acks)
			metrics.ExportMessages.Add(float64(len(acks)))
			acks = acks[:0]
		}
	}
	for {
		var m inflight
		select {
		case m = <-handed:
		default:
			record() // nothing more handed: before waiting
			select {
			case m = <-handed:
			case <-ctx.Done():
				return
			}
		}
		if len(acks) >= ackBatch {
			record()
		}
		if s.await(ctx, client, &m, record) {
			acks = append(acks, ack{seq: m.e.seq, round: m.round, gen: m.gen})
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// await waits until m is acknowledged on the current connection by the
// current broker process, publishing it again as needed. It returns false
// if ctx ended or a rewind put m back in the queue. It calls idle before
// it waits.
func (s *Sink) await(ctx context.Context, client mqtt.Client, m *inflight, idle func()) bool {
	for {
		select {
		case <-m.tok.Done():
		default:
			idle()
			select {
			case <-m.tok.Done():
			case <-ctx.Done():
				return false
			}
		}
		err := m.tok.Error()
		if err == nil && s.epoch.Load() == m.epoch && s.gen() == m.gen {
			return true
		}
		idle()
		if err != nil {
			metrics.ExportErrors.Inc()
			if !errors.Is(err, mqtt.ErrNotConnected) {
				topic, _ := m.e.target()
				s.log.Warn("export: publish failed; sending it again", "topic", topic, "error", err)
			}
		}
		if s.rewound(m.round) {
			return false
		}
		select {
		case <-s.whenUp():
		case <-ctx.Done():
			return false
		}
		m.epoch, m.gen = s.epoch.Load(), s.gen()
		m.tok = s.send(client, m.e)
	}
}

// rewound reports whether a rewind happened since round: the messages
// handed then are in the queue again.
func (s *Sink) rewound(round uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.round != round
}

// flushLoop saves the spool's state, prunes the spool, fsyncs it and
// reports health and metrics, until ctx ends. It runs flushEvery after
// something changed (noteLocked), and again when the segment's fsync is
// due; while nothing changes it sleeps. It also reconciles the connection
// state with the client's after every change: paho runs its handlers in
// goroutines of their own, so a late "connection lost" could otherwise
// overwrite a newer "connected".
func (s *Sink) flushLoop(ctx context.Context, client mqtt.Client) {
	timer := time.NewTimer(flushEvery)
	timer.Stop()
	defer timer.Stop()
	var due time.Time // when the timer fires; zero while it is not armed
	arm := func(d time.Duration) {
		if due.IsZero() || time.Until(due) > d {
			timer.Reset(d)
			due = time.Now().Add(d)
		}
	}
	var lastSync time.Time
	for {
		var fire <-chan time.Time
		if !due.IsZero() {
			fire = timer.C
		}
		select {
		case <-s.flush:
			arm(flushEvery)
			continue
		case <-fire:
			due = time.Time{}
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		s.flushDue = false
		if s.spool.saveState() {
			s.spool.prune()
		}
		var f interface{ Sync() error }
		var syncIn time.Duration
		if s.spool.dirty {
			if wait := syncEvery - time.Since(lastSync); wait > 0 {
				syncIn = wait // fsync at most once a second
			} else if seg := s.spool.syncTarget(); seg != nil {
				f = seg
				lastSync = time.Now()
			}
		}
		s.mu.Unlock()
		if f != nil {
			// A segment closed meanwhile was fsynced when it was closed.
			_ = f.Sync()
		}
		if syncIn > 0 {
			arm(syncIn)
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

// drain waits up to StopGrace for every message to be acknowledged while
// connected, then, with a managed broker, for one save of its state, so
// the next start does not send them again.
func (s *Sink) drain(ctx context.Context) {
	deadline := time.Now().Add(s.opts.StopGrace)
	for s.Connected() && s.unacked() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s.opts.Broker == nil || !s.Connected() {
		return
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := s.checkpoint(dctx, true); err != nil {
		s.log.Info("export: no save of the broker's state at stop; the next start sends the last messages again", "error", err)
	}
}

// unacked is how many accepted messages the broker has not acknowledged.
func (s *Sink) unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.spool.next - s.ackedSeq)
}

// report publishes the export state to health and metrics.
func (s *Sink) report() {
	s.mu.Lock()
	n := s.held()
	unconfirmed := s.ackedSeq - s.spool.durable
	kept := s.spool.durable - s.spool.kept
	s.mu.Unlock()
	up := s.Connected()
	if s.opts.Health != nil {
		s.opts.Health.Export(up, n, s.opts.QueueLimit)
	}
	metrics.ExportQueue.Set(float64(n))
	metrics.ExportUnconfirmed.Set(float64(unconfirmed))
	metrics.ExportReplayKept.Set(float64(kept))
	if up {
		metrics.ExportConnected.Set(1)
	} else {
		metrics.ExportConnected.Set(0)
	}
}
