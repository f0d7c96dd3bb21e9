package export

import (
	"context"
	"errors"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
)

// Broker is the managed local broker as the sink needs it to know when a
// message is safe from a crash of that broker (appliance/broker.Broker
// implements it). Without one (an unmanaged broker), a message leaves the
// spool on the broker's acknowledgement and the broker's own persistence
// carries it from there.
//
// With one, a message the broker acknowledged stays in the spool until a
// save of the broker's state that was made after the acknowledgement, by
// the same broker process, is on disk. If that process stops before such a
// save, the messages it acknowledged since the last one are sent again.
// And the spool keeps what the broker still held for the cloud bridge at
// its last save, so that if the broker's saved state is lost (a damaged
// mosquitto.db moved aside), those messages are sent again too.
type Broker interface {
	// Generation names the broker process that runs now, or ran last; it
	// grows with every start.
	Generation() uint64
	// Ready is closed once the broker first listens: the sink makes its
	// first attempt then, not while the broker is still starting.
	Ready() <-chan struct{}
	// NextStart returns a channel that is closed when the next broker
	// process listens: the sink connects at once instead of waiting out
	// its back-off.
	NextStart() <-chan struct{}
	// Persist returns once process gen has saved its whole state to disk
	// (written, fsynced and in place) after Persist was called. With now,
	// the broker is asked to save at once; without, Persist waits a short
	// while for a save the broker makes on its own schedule and returns
	// ErrNotSaved if none came. The result describes that save; clientID is
	// the sink's client id, whose messages Saved.Held reports.
	Persist(ctx context.Context, gen uint64, clientID string, now bool) (Saved, error)
}

// Saved describes one save of the broker's state.
type Saved struct {
	// DB identifies the broker's database: it changes when the broker
	// starts without the state it saved before (the file was damaged and
	// moved aside, or removed). Never 0.
	DB uint64
	// Held reports whether the save still holds a message with this topic
	// and payload from the sink for the cloud bridge (not yet delivered to
	// the cloud). Nil when the broker has no bridge.
	Held func(topic string, payload []byte) bool
	// Backlog is how many of the sink's messages the save holds for the
	// bridge.
	Backlog int
	// Skimmed: the broker did not look at what this save holds (reading a
	// large state after every save would cost too much); Held is nil and
	// the sink keeps its replay tail as it is until a save that was read.
	Skimmed bool
}

// confirmWithin: a message acknowledged this long ago and not yet in a
// save makes the sink ask for one, whatever the broker's autosave interval.
const confirmWithin = 30 * time.Second

// ErrNotSaved is what Persist returns when the broker made no save of its
// own within the wait (now false).
var ErrNotSaved = errors.New("export: the broker made no save yet")

// ErrGone is what Persist returns when the broker process of the asked
// generation no longer runs: what it acknowledged since its last save may
// be lost.
var ErrGone = errors.New("export: the broker process stopped")

// persistLoop confirms, save by save, that the broker has stored what it
// acknowledged, and trims the replay tail to what the bridge still holds.
// It checks flushEvery apart while something waits for a save (the broker
// acknowledged it) or is kept for a replay, and sleeps while nothing does
// until the broker acknowledges a message (acked wakes it).
func (s *Sink) persistLoop(ctx context.Context) {
	pause := time.NewTimer(flushEvery)
	defer pause.Stop()
	var lastErr time.Time
	for {
		s.mu.Lock()
		waiting := s.ackedSeq > s.spool.durable || s.spool.kept < s.spool.durable
		s.mu.Unlock()
		if !waiting {
			select {
			case <-s.unsaved:
			case <-ctx.Done():
				return
			}
		}
		pause.Reset(flushEvery)
		select {
		case <-pause.C:
		case <-ctx.Done():
			return
		}
		if err := s.checkpoint(ctx, false); err != nil && ctx.Err() == nil && time.Since(lastErr) > time.Minute {
			lastErr = time.Now()
			s.log.Warn("export: cannot confirm that the broker saved what it acknowledged; keeping those messages in the spool",
				"error", err)
		}
	}
}

// checkpoint waits for one save of the broker's state (asking for it when
// force is set, the spool fills, or an acknowledgement waits longer than
// confirmWithin) and applies it: what the broker
// acknowledged before is durable, and the replay tail shrinks to what the
// save still holds for the cloud. A broker process that stopped before
// saving, or a broker database that was replaced, makes the sink send the
// affected messages again.
func (s *Sink) checkpoint(ctx context.Context, force bool) error {
	select {
	case s.ckpt <- struct{}{}:
		defer func() { <-s.ckpt }()
	case <-ctx.Done():
		return ctx.Err()
	}
	b := s.opts.Broker
	s.mu.Lock()
	upto, gen, round := s.ackedSeq, s.windowGen, s.round
	window := upto > s.spool.durable
	tail := s.spool.kept < s.spool.durable
	force = (force || s.held() >= s.opts.QueueLimit/4 || time.Since(s.windowSince) > confirmWithin) && window
	s.mu.Unlock()
	cur := b.Generation()
	if window && gen != cur {
		s.mu.Lock()
		if s.round == round {
			s.rewindLocked(s.spool.durable, "the broker restarted before it saved the messages it had acknowledged")
		}
		s.mu.Unlock()
		return nil
	}
	if !window && !tail {
		return nil
	}
	saved, err := b.Persist(ctx, cur, s.opts.ClientID, force)
	switch {
	case errors.Is(err, ErrNotSaved):
		return nil
	case errors.Is(err, ErrGone):
		return nil // the next round sees the new generation
	case err != nil:
		if ctx.Err() == nil {
			metrics.BrokerSaves.WithLabelValues("error").Inc()
		}
		return err
	}
	metrics.BrokerSaves.WithLabelValues("ok").Inc()
	if !saved.Skimmed {
		metrics.BrokerBacklog.Set(float64(saved.Backlog))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.round != round {
		return nil // sent again meanwhile: wait for the next save
	}
	if s.spool.db != saved.DB {
		lost := s.spool.db != 0 && s.spool.kept < s.spool.durable
		s.spool.db = saved.DB
		if lost {
			s.rewindLocked(s.spool.kept, "the broker lost its saved state (see the broker's log); sending again what it held for the cloud")
			return nil
		}
	}
	kept := upto
	switch {
	case saved.Skimmed:
		kept = s.spool.kept
	case saved.Held != nil:
		kept = s.firstHeld(upto, saved.Held)
	}
	s.confirmLocked(upto, kept)
	return nil
}

// firstHeld returns the seq of the oldest message below upto, from the
// replay tail on, that the broker still holds for the cloud, or upto if
// none. It reads the spool's segments (called with s.mu held; the tail's
// segments are not pruned while it reads).
func (s *Sink) firstHeld(upto uint64, held func(string, []byte) bool) uint64 {
	from := s.spool.kept
	found := upto
	s.spool.readRange(s.spool.segmentsFrom(from), from, upto, func(e entry) bool {
		if topic, _ := e.target(); held(topic, e.payload) {
			found = e.seq
			return false
		}
		return true
	})
	return found
}

// trimTailLocked drops the oldest messages of the replay tail beyond its limit.
// Called with s.mu held.
func (s *Sink) trimTailLocked() {
	kept, durable := s.spool.kept, s.spool.durable
	if durable-kept <= uint64(s.opts.ReplayLimit) {
		return
	}
	drop := durable - kept - uint64(s.opts.ReplayLimit)
	s.spool.kept += drop
	metrics.ExportReplayDropped.Add(float64(drop))
	if time.Since(s.trimLogged) > time.Minute {
		s.trimLogged = time.Now()
		s.log.Warn("export: the broker holds more for the cloud than the spool keeps for a replay; "+
			"should the broker's saved state be lost now, the oldest of it could not be sent again",
			"dropped_from_replay", drop, "replay_limit", s.opts.ReplayLimit)
	}
}
