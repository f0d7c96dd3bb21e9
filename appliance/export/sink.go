package export

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/mqttconn"
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
	// StoreDir holds the spool of every message not yet safe in the
	// broker, waiting or in flight; a restart with the same StoreDir and
	// ClientID sends what the last run left.
	StoreDir string
	// QueueLimit is how many accepted messages may wait to be safe in the
	// broker (acknowledged, and with Broker set, saved) before Publish
	// blocks (default 100000).
	QueueLimit int
	// Broker, when osgate runs the broker (appliance/broker), lets the
	// sink keep what the broker acknowledged until the broker saved it,
	// and what it holds for the cloud until the cloud has it (see Broker).
	// Nil for a broker someone else runs.
	Broker Broker
	// ReplayLimit bounds how many messages the spool keeps to send again
	// should the broker lose its saved state (default QueueLimit).
	ReplayLimit int
	// InFlight bounds the messages handed to the MQTT client and not yet
	// acknowledged (default 512). A wide window lets many messages share
	// each write to the broker and each read of its acknowledgements;
	// the payloads are the spool's own, not copies.
	InFlight int
	// RetryMax is the longest pause between connection attempts
	// (default 5s). With Broker set, the sink also tries at once when the
	// broker starts.
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
// them from the spool once they are safe: acknowledged by the broker, and
// with Options.Broker, in a save of the broker's state (see Broker).
//
// Nothing is handed to the MQTT client before its first connection is up:
// paho.mqtt.golang v1.5.1 loses part of what is published while it is
// still connecting with ConnectRetry, although every token reports success.
type Sink struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// spool holds every accepted message until it is durable.
	spool *spool
	// queue is every message not durable yet, in seq order: queue[:head]
	// were handed to the client, queue[head:] wait.
	queue []entry
	head  int
	// pending are the publish calls waiting for the next write to the
	// spool, writing is set while one runs (without s.mu), written is
	// signalled when it ended, and unwritten counts the calls of both.
	pending   []*pubReq
	writing   bool
	written   *sync.Cond
	unwritten int
	commit    struct { // scratch of the commit running
		recs    []record
		entries []entry
		ends    []int
		spare   []*pubReq // the last batch, for the next pending
	}
	// ackedSeq: every seq below it was acknowledged by the broker process
	// windowGen since the last rewind (and it is at least spool.durable).
	ackedSeq    uint64
	windowGen   uint64
	windowSince time.Time // when the oldest unconfirmed acknowledgement came (about)
	// round counts rewinds: messages handed before one are acknowledged
	// again from the queue, not through their old token.
	round      uint64
	waiters    int           // Publish calls blocked on a full queue
	freed      chan struct{} // closed when room is made while waiters > 0
	closed     bool
	trimLogged time.Time

	// flushDue is set when the spool's state, its unsynced data or the
	// reported figures changed and flushLoop has not run since; setting
	// it wakes flushLoop (flush, capacity 1), which does nothing while it
	// stays unset.
	flushDue bool
	flush    chan struct{}
	// unsaved wakes persistLoop when the broker acknowledged a message
	// while none waited for its save (capacity 1).
	unsaved chan struct{}

	// wire is the connection to the broker the sink writes on itself
	// (tcp:// and ssl://, see direct.go), nil while there is none;
	// wireUp is closed while there is one. flights are the messages
	// written on it and not yet acknowledged, in order; sentTo is the
	// seq below which every message was written at least once.
	wire    *mqttconn.Conn
	wireUp  chan struct{}
	flights []flight
	sentTo  uint64

	more      chan struct{} // a message was queued, or sendDirect has something to do (capacity 1)
	up        chan struct{} // closed while connected
	lost      chan struct{} // the connection was lost (capacity 1)
	ckpt      chan struct{} // held by the one checkpoint running (capacity 1)
	connected atomic.Bool
	running   atomic.Bool
	epoch     atomic.Uint64 // counts connection losses and reconnects
	connects  atomic.Uint64 // connections made
}

// qos2InFlight bounds the window at QoS 2 (see New).
const qos2InFlight = 16

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
	if opts.ReplayLimit <= 0 {
		opts.ReplayLimit = opts.QueueLimit
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 512
	}
	if opts.QoS == 2 {
		// Mosquitto takes at most max_inflight_messages (20 by default)
		// QoS 2 messages of a client at a time and drops the others,
		// although it answers them with a PUBREC like the rest.
		opts.InFlight = min(opts.InFlight, qos2InFlight)
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
		opts:     opts,
		log:      log,
		spool:    sp,
		queue:    pending,
		ackedSeq: sp.durable,
		freed:    make(chan struct{}),
		more:     make(chan struct{}, 1),
		flush:    make(chan struct{}, 1),
		wireUp:   make(chan struct{}),
		unsaved:  make(chan struct{}, 1),
		up:       make(chan struct{}),
		lost:     make(chan struct{}, 1),
		ckpt:     make(chan struct{}, 1),
	}
	s.written = sync.NewCond(&s.mu)
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

// publish spools one message under its spooled topic (see target). The
// messages published while a write to the spool runs wait for it and then
// go to the spool together in the next write (group commit); each call
// returns once its own record is written.
func (s *Sink) publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSize(topic, payload); err != nil {
		return fmt.Errorf("export: publish to %s: %w", strings.TrimPrefix(topic, retainMark), err)
	}
	s.mu.Lock()
	for !s.closed && s.held() >= s.opts.QueueLimit {
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
	req := &pubReq{rec: record{topic: topic, payload: payload}}
	s.pending = append(s.pending, req)
	s.unwritten++
	for !req.done {
		if s.writing {
			s.written.Wait()
			continue
		}
		s.commitLocked()
	}
	s.mu.Unlock()
	if req.err != nil {
		return fmt.Errorf("export: publish to %s: %w", strings.TrimPrefix(topic, retainMark), req.err)
	}
	select {
	case s.more <- struct{}{}:
	default:
	}
	return nil
}

// writeSegment writes a batch of records to the spool (tests slow it).
var writeSegment = (*os.File).Write

// pubReq is one publish call waiting for its record to be written.
type pubReq struct {
	rec  record
	done bool
	err  error
}

// commitLocked writes every pending message to the spool in one write,
// with s.mu held (released during the write), and queues those written.
// One commit runs at a time (s.writing); the callers whose messages it
// wrote are woken.
func (s *Sink) commitLocked() {
	batch := s.pending
	s.pending = s.commit.spare[:0]
	s.writing = true
	var f *os.File
	var first uint64
	err := ErrClosed
	if !s.closed {
		f, first, err = s.spool.prepare()
	}
	k, n := 0, 0
	if err == nil {
		// Only the one commit running uses the scratch slices.
		c := &s.commit
		c.recs = c.recs[:0]
		for _, r := range batch {
			c.recs = append(c.recs, r.rec)
		}
		s.mu.Unlock()
		// The callers wait for this write: their payloads are not
		// reused before it ends.
		var buf []byte
		buf, c.entries, c.ends = encodeBatch(first, c.recs, c.entries[:0], c.ends[:0])
		n, err = writeSegment(f, buf)
		s.mu.Lock()
		k = s.spool.finish(n, c.ends, err)
		s.queue = append(s.queue, c.entries[:k]...)
		clear(c.recs)
		clear(c.entries)
		if err != nil {
			err = fmt.Errorf("write spool segment: %w", err)
		}
	}
	for i, r := range batch {
		r.done = true
		if i >= k {
			r.err = err
		}
	}
	s.unwritten -= len(batch)
	clear(batch)
	s.commit.spare = batch[:0]
	s.writing = false
	s.written.Broadcast()
	s.noteLocked()
}

// noteLocked wakes flushLoop, unless it is due already: something it
// saves, fsyncs or reports changed. Called with s.mu held.
func (s *Sink) noteLocked() {
	if s.flushDue {
		return
	}
	s.flushDue = true
	select {
	case s.flush <- struct{}{}:
	default:
	}
}

// Queued is how many accepted messages are not safe in the broker yet:
// waiting, in flight, or (with Options.Broker) acknowledged and not yet
// in a save of the broker's state.
func (s *Sink) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held()
}

// Unconfirmed is how many of the Queued messages the broker acknowledged
// and has not yet saved (with Options.Broker; 0 without).
func (s *Sink) Unconfirmed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.ackedSeq - s.spool.durable)
}

// held is Queued with s.mu held: also the messages being written.
func (s *Sink) held() int { return int(s.spool.next-s.spool.durable) + s.unwritten }

// Connected reports whether the MQTT connection is up.
func (s *Sink) Connected() bool { return s.connected.Load() }

// take appends to batch up to limit waiting messages (at least one) and
// returns them with the round they were taken in, blocking until there
// is one.
func (s *Sink) take(ctx context.Context, batch []entry, limit int) ([]entry, uint64, bool) {
	for {
		s.mu.Lock()
		if s.head < len(s.queue) {
			n := min(len(s.queue)-s.head, max(limit, 1))
			batch = append(batch, s.queue[s.head:s.head+n]...)
			s.head += n
			r := s.round
			s.mu.Unlock()
			return batch, r, true
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-ctx.Done():
			return batch, 0, false
		}
	}
}

// ack is one message the broker acknowledged: handed in round while
// broker process gen ran.
type ack struct {
	seq   uint64
	round uint64
	gen   uint64
}

// acked records that the broker acknowledged acks, in the order they
// were handed. An acknowledgement from another process than the one that
// acknowledged the messages still waiting for its save means that
// process stopped: those are sent again.
func (s *Sink) acked(acks []ack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackedLocked(acks)
}

// ackedLocked is acked with s.mu held.
func (s *Sink) ackedLocked(acks []ack) {
	opened := s.ackedSeq == s.spool.durable
	for _, a := range acks {
		if a.round != s.round {
			continue // sent again from the queue after a rewind
		}
		if s.ackedSeq > s.spool.durable && s.windowGen != a.gen {
			s.rewindLocked(s.spool.durable, "the broker restarted before it saved the messages it had acknowledged")
			continue
		}
		if s.ackedSeq == s.spool.durable {
			s.windowSince = time.Now()
		}
		s.windowGen = a.gen
		s.ackedSeq = max(s.ackedSeq, a.seq+1)
	}
	if s.ackedSeq == s.spool.durable {
		return
	}
	if s.opts.Broker == nil {
		s.confirmLocked(s.ackedSeq, s.ackedSeq)
		return
	}
	s.noteLocked()
	if opened {
		select {
		case s.unsaved <- struct{}{}:
		default:
		}
	}
}

// confirmLocked records that every message below upto is durable and that
// the replay tail starts at kept, and drops them from the queue.
func (s *Sink) confirmLocked(upto, kept uint64) {
	n, _ := slices.BinarySearchFunc(s.queue, upto, func(e entry, seq uint64) int { return cmp.Compare(e.seq, seq) })
	n = min(n, s.head)
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	s.head -= n
	if cap(s.queue) > 4096 && cap(s.queue) > 4*len(s.queue) {
		s.queue = slices.Clone(s.queue)
	}
	s.spool.setDurable(upto, kept)
	s.windowSince = time.Now()
	s.trimTailLocked()
	s.noteLocked()
	if s.waiters > 0 && s.held() < s.opts.QueueLimit {
		close(s.freed)
		s.freed = make(chan struct{})
	}
}

// rewindLocked sends every message from seq from on again: those not
// durable yet (in the queue) and, when from is below spool.durable, the
// replay tail read back from disk. Messages handed before are acknowledged
// again through the queue (the round changes).
func (s *Sink) rewindLocked(from uint64, why string) {
	resend := s.head
	if from < s.spool.durable {
		var tail []entry
		s.spool.readRange(s.spool.segmentsFrom(from), from, s.spool.durable, func(e entry) bool {
			tail = append(tail, e)
			return true
		})
		resend += len(tail)
		s.queue = append(tail, s.queue...)
		s.spool.rewind(from)
	}
	s.round++
	s.head = 0
	clear(s.flights)
	s.flights = s.flights[:0]
	s.ackedSeq = s.spool.durable
	s.windowGen = 0
	s.noteLocked()
	if resend > 0 {
		metrics.ExportResent.Add(float64(resend))
		s.log.Warn("export: sending messages again: "+why, "messages", resend, "from_seq", from)
	}
	select {
	case s.more <- struct{}{}:
	default:
	}
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
		s.noteLocked() // flushLoop checks the client's state again
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
	for s.writing {
		s.written.Wait() // the records being written are accepted
	}
	return s.spool.close()
}
