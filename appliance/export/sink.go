package export

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/health"
)

// Options configure a Sink.
type Options struct {
	// URL of the local broker, e.g. "tcp://127.0.0.1:1883".
	URL string
	// ClientID is fixed: the broker keeps the session (clean session off)
	// under it across restarts.
	ClientID           string
	Username, Password string
	// TLS for ssl:// URLs (optional).
	TLS *tls.Config
	// QoS of published messages: 0, 1 or 2. The gateway passes
	// export.qos (default 1); 0 loses what is in flight when the
	// connection drops.
	QoS    byte
	Retain bool
	// StoreDir holds the spool of every message not yet acknowledged by
	// the broker, waiting or in flight; a restart with the same StoreDir
	// and ClientID sends what the last run left.
	StoreDir string
	// QueueLimit is how many accepted messages may wait for the broker's
	// acknowledgement before Publish blocks (default 100000).
	QueueLimit int
	// InFlight bounds the messages handed to the MQTT client and not yet
	// acknowledged (default 64).
	InFlight int
	// RetryMax is the longest pause between connection attempts
	// (default 5s).
	RetryMax time.Duration
	// StopGrace is how long Run keeps sending after its context ends
	// (default 2s).
	StopGrace time.Duration
	Logger    *slog.Logger
	// Health, if set, receives the export state.
	Health *health.Model
	// Will, if set, is the message the broker publishes (retained) when
	// the connection drops without a clean disconnect: the gateway was
	// killed or hung.
	Will *Will
	// OnReconnect, if set, is called (in a goroutine of its own) each time
	// the connection is up again after it was lost, e.g. to publish again
	// what the will replaced.
	OnReconnect func()
	// Watch, if set, is subscribed to (QoS 0) at every connection; its
	// Handle gets each message's payload and must not block.
	Watch *Watch
}

// Watch is a subscription of the sink's client: a topic (or filter) and
// what to do with each payload.
type Watch struct {
	Topic  string
	Handle func(payload []byte)
}

// Will is a last-will message: topic and payload, published retained at
// the sink's QoS.
type Will struct {
	Topic   string
	Payload []byte
}

// ErrClosed is returned by Publish after Run has returned.
var ErrClosed = errors.New("export: sink closed")

// Sink publishes messages to the local broker. Publish accepts a message
// into a disk spool and returns; Run hands spooled messages to the MQTT
// client while it is connected, at most InFlight at a time, and drops
// them from the spool once the broker acknowledged them.
//
// Nothing is handed to the MQTT client before its first connection is up:
// paho.mqtt.golang v1.5.1 loses part of what is published while it is
// still connecting with ConnectRetry, although every token reports success.
type Sink struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	spool   *spool
	queue   []entry // accepted, not yet handed to the client: queue[head:]
	head    int
	waiters int           // Publish calls blocked on a full queue
	freed   chan struct{} // closed when room is made while waiters > 0
	closed  bool

	more      chan struct{} // a message was queued (capacity 1)
	up        chan struct{} // closed while connected
	connected atomic.Bool
	running   atomic.Bool
	epoch     atomic.Uint64 // counts connection losses and reconnects
	connects  atomic.Uint64 // connections made
}

// New opens the spool under opts.StoreDir and returns a Sink holding
// whatever the last run left unacknowledged. Run sends it.
func New(opts Options) (*Sink, error) {
	switch {
	case opts.URL == "":
		return nil, errors.New("export: broker URL missing")
	case opts.ClientID == "":
		return nil, errors.New("export: client id missing")
	case opts.StoreDir == "":
		return nil, errors.New("export: store dir missing")
	case opts.QoS > 2:
		return nil, fmt.Errorf("export: QoS %d: must be 0, 1 or 2", opts.QoS)
	}
	if opts.Will != nil {
		if err := checkTopic(opts.Will.Topic); err != nil {
			return nil, fmt.Errorf("export: will: %w", err)
		}
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = 100000
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 64
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Second
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "export", "broker", opts.URL, "client_id", opts.ClientID)
	sp, pending, err := openSpool(filepath.Join(opts.StoreDir, "spool"), log)
	if err != nil {
		return nil, fmt.Errorf("export: open spool: %w", err)
	}
	if opts.QoS == 0 {
		log.Warn("export: QoS 0: messages in flight when the connection drops are lost; set QoS 1 for delivery")
	}
	if len(pending) > 0 {
		log.Info("export: resending messages left by the last run", "messages", len(pending))
	}
	s := &Sink{
		opts:  opts,
		log:   log,
		spool: sp,
		queue: pending,
		freed: make(chan struct{}),
		more:  make(chan struct{}, 1),
		up:    make(chan struct{}),
	}
	s.report()
	return s, nil
}

// PublishRetained is Publish for a message the broker keeps for topic as
// its retained message (a status document); an empty payload clears it.
// Retained and plain messages keep their order through the spool.
func (s *Sink) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	if err := checkTopic(topic); err != nil {
		return fmt.Errorf("export: publish: %w", err)
	}
	if len(topic) >= 65535 {
		return fmt.Errorf("export: publish: retained topic longer than 65534 bytes")
	}
	return s.publish(ctx, retainMark+topic, payload)
}

// retainMark starts the spooled topic of a retained message: topics never
// contain NUL (checkTopic), so older spools read the same.
const retainMark = "\x00"

// target is the topic to publish a spooled entry to, and whether to
// retain it.
func (e entry) target() (string, bool) {
	if t, ok := strings.CutPrefix(e.topic, retainMark); ok {
		return t, true
	}
	return e.topic, false
}

// Publish accepts one message for topic. It returns once the message is in
// the spool, where a restart finds it; it blocks while QueueLimit messages
// wait for the broker (back-pressure) and returns ctx.Err() if ctx ends
// first. It never drops a message it accepted. The payload is copied.
// Safe for concurrent use.
func (s *Sink) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := checkTopic(topic); err != nil {
		return fmt.Errorf("export: publish: %w", err)
	}
	return s.publish(ctx, topic, payload)
}

// publish spools one message under its spooled topic (see target).
func (s *Sink) publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	for !s.closed && s.spool.pending() >= s.opts.QueueLimit {
		s.waiters++
		ch := s.freed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiters--
			s.mu.Unlock()
			return ctx.Err()
		}
		s.mu.Lock()
		s.waiters--
	}
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	e, err := s.spool.append(topic, payload)
	if err == nil {
		s.queue = append(s.queue, e)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("export: publish to %s: %w", strings.TrimPrefix(topic, retainMark), err)
	}
	select {
	case s.more <- struct{}{}:
	default:
	}
	return nil
}

// Queued is how many accepted messages the broker has not acknowledged
// yet (waiting and in flight).
func (s *Sink) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spool.pending()
}

// Connected reports whether the MQTT connection is up.
func (s *Sink) Connected() bool { return s.connected.Load() }

// take returns the next waiting message, blocking until there is one.
func (s *Sink) take(ctx context.Context) (entry, bool) {
	for {
		s.mu.Lock()
		if s.head < len(s.queue) {
			e := s.queue[s.head]
			s.queue[s.head] = entry{}
			s.head++
			if s.head == len(s.queue) {
				s.queue, s.head = s.queue[:0], 0
			} else if s.head >= 1024 && s.head*2 >= len(s.queue) {
				n := copy(s.queue, s.queue[s.head:])
				clear(s.queue[n:])
				s.queue, s.head = s.queue[:n], 0
			}
			s.mu.Unlock()
			return e, true
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-ctx.Done():
			return entry{}, false
		}
	}
}

// acked records that every message below seq upto is acknowledged.
func (s *Sink) acked(upto uint64) {
	s.mu.Lock()
	s.spool.ack(upto)
	if s.waiters > 0 && s.spool.pending() < s.opts.QueueLimit {
		close(s.freed)
		s.freed = make(chan struct{})
	}
	s.mu.Unlock()
}

// setConnected records a connection change.
func (s *Sink) setConnected(up bool) {
	s.mu.Lock()
	if up != s.connected.Load() {
		s.connected.Store(up)
		if up {
			close(s.up)
		} else {
			s.up = make(chan struct{})
		}
	}
	s.mu.Unlock()
	s.report()
}

// whenUp returns a channel that is closed while the connection is up.
func (s *Sink) whenUp() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// close stops accepting messages and closes the spool.
func (s *Sink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.freed)
	s.freed = make(chan struct{})
	return s.spool.close()
}
