package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gridx "github.com/grid-x/modbus"
	"github.com/grid-x/serial"

	"github.com/osgate/osgate/internal/backoff"
)

// handler is what a grid-x client handler offers: framing, transport and
// connection control.
type handler interface {
	gridx.Packager
	gridx.Transporter
	gridx.Connector
}

// link owns one TCP endpoint or one serial port. Every request of every
// device of every connector on it goes through do, one at a time, with the
// line kept silent for the frame delay between transactions.
type link struct {
	cfg    linkConfig
	log    *slog.Logger
	turn   chan struct{} // holds one token: whoever has it talks on the line
	h      handler
	client gridx.Client
	// setTimeout bounds the next transaction (the request's remaining time).
	setTimeout func(time.Duration)

	// Guarded by turn.
	lastDone  time.Time
	connected bool
	failures  int       // connection attempts failed in a row
	retryAt   time.Time // no new attempt before this
	lastErr   error
	closed    bool

	refs int // guarded by links.mu
}

// links is the process-wide table of transport owners, so that connectors
// naming the same endpoint or port share one owner.
var links = struct {
	sync.Mutex
	m map[string]*link
}{m: map[string]*link{}}

// acquireLink returns the owner for cfg, creating it (without I/O) if no
// connector uses that endpoint yet.
func acquireLink(cfg linkConfig, log *slog.Logger) (*link, error) {
	links.Lock()
	defer links.Unlock()
	if l, ok := links.m[cfg.key()]; ok {
		if l.cfg != cfg {
			return nil, fmt.Errorf("%s is in use by another modbus connector with different line settings (baud, data_bits, parity, stop_bits, rs485, frame_delay and, on a serial port, timeout must match)", cfg.address)
		}
		l.refs++
		return l, nil
	}
	l := newLink(cfg, log)
	l.refs = 1
	links.m[cfg.key()] = l
	return l, nil
}

// release drops one user of l and closes the transport with the last one.
func (l *link) release() error {
	links.Lock()
	defer links.Unlock()
	l.refs--
	if l.refs > 0 {
		return nil
	}
	delete(links.m, l.cfg.key())
	// Wait for an in-flight transaction to end before closing under it.
	l.turn <- struct{}{}
	defer func() { <-l.turn }()
	l.closed = true
	return l.h.Close()
}

func newLink(cfg linkConfig, log *slog.Logger) *link {
	l := &link{cfg: cfg, log: log.With("transport", cfg.transport, "address", cfg.address), turn: make(chan struct{}, 1)}
	dial := gridx.WithDialer((&net.Dialer{}).DialContext)
	switch cfg.transport {
	case transportTCP:
		h := gridx.NewTCPClientHandler(cfg.address, dial)
		h.LinkRecoveryTimeout = 0 // reconnecting is ours, with back-off
		l.h, l.setTimeout = h, func(d time.Duration) {
			h.Timeout = d
			// A late answer to a request that timed out is drained by
			// transaction id during the next request's time.
			h.ProtocolRecoveryTimeout = d
		}
	case transportRTUOverTCP:
		h := gridx.NewRTUOverTCPClientHandler(cfg.address)
		h.Dial = (&net.Dialer{}).DialContext
		l.h, l.setTimeout = h, func(d time.Duration) { h.Timeout = d }
	default:
		h := gridx.NewRTUClientHandler(cfg.address)
		h.BaudRate, h.DataBits, h.Parity, h.StopBits = cfg.baud, cfg.dataBits, cfg.parity, cfg.stopBits
		// The port keeps the read timeout it was opened with: a unit that
		// does not answer holds the line for this long.
		h.Timeout = cfg.readTimeout
		h.IdleTimeout = 0 // the port stays open until the last connector closes
		if cfg.useRS485 {
			h.RS485 = serial.RS485Config{
				Enabled:            true,
				DelayRtsBeforeSend: cfg.rs485.DelayBeforeSend,
				DelayRtsAfterSend:  cfg.rs485.DelayAfterSend,
				RtsHighDuringSend:  cfg.rs485.RTSOnSend,
				RtsHighAfterSend:   cfg.rs485.RTSAfterSend,
				RxDuringTx:         cfg.rs485.RxDuringTx,
			}
		}
		l.h, l.setTimeout = h, func(d time.Duration) { h.Timeout = d }
	}
	l.client = gridx.NewClient(l.h)
	return l
}

// reconnect is the back-off between connection attempts after failures.
var reconnect = backoff.Policy{First: 100 * time.Millisecond, Max: 30 * time.Second}

// errLinkDown marks a failure of the endpoint or port itself (it cannot be
// opened or connected): the whole device failed, not a channel.
type errLinkDown struct{ err error }

func (e *errLinkDown) Error() string { return e.err.Error() }
func (e *errLinkDown) Unwrap() error { return e.err }

// errTimeout marks a request that got no answer in time.
var errTimeout = errors.New("no answer in time")

// do runs one transaction for unit. The request is handed in with ctx,
// whose deadline (the core's per-poll deadline) bounds the wait for the
// line as well as the transaction; on the line, the wait for an answer is
// bounded by timeout too, so a unit that does not answer holds the line for
// at most its own timeout.
func (l *link) do(ctx context.Context, unit uint8, timeout time.Duration, op func(ctx context.Context, c gridx.Client) ([]byte, error)) ([]byte, error) {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the line: %w (%w)", errTimeout, ctx.Err())
	}
	defer func() { <-l.turn }()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("waiting for the line: %w (%w)", errTimeout, err)
	}
	if l.closed {
		return nil, &errLinkDown{errors.New("connector closed")}
	}
	reused := l.connected
	res, err := l.transact(ctx, unit, timeout, op)
	var down *errLinkDown
	if reused && errors.As(err, &down) && !l.connected {
		// A connection that had sat idle was found broken (many devices
		// close idle connections): one fresh attempt before giving up.
		res, err = l.transact(ctx, unit, timeout, op)
	}
	return res, err
}

// transact connects if needed, keeps the frame delay and sends one request.
// The caller holds the line.
func (l *link) transact(ctx context.Context, unit uint8, timeout time.Duration, op func(ctx context.Context, c gridx.Client) ([]byte, error)) ([]byte, error) {
	if !l.connected {
		if wait := time.Until(l.retryAt); wait > 0 {
			return nil, &errLinkDown{fmt.Errorf("%s unreachable, next attempt in %s: %w", l.cfg.address, wait.Round(time.Millisecond), l.lastErr)}
		}
		if l.cfg.readTimeout > 0 {
			l.setTimeout(l.cfg.readTimeout) // a serial port keeps the timeout it opens with
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := l.h.Connect(cctx)
		cancel()
		if err != nil {
			l.failed(err)
			return nil, &errLinkDown{fmt.Errorf("connect %s: %w", l.cfg.address, err)}
		}
		if l.failures > 0 {
			l.log.Info("modbus: connected again", "after_failures", l.failures)
		}
		l.connected, l.failures, l.lastErr = true, 0, nil
	}
	if wait := time.Until(l.lastDone.Add(l.cfg.frameDelay)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for the frame delay: %w (%w)", errTimeout, ctx.Err())
		}
	}
	left, own := timeout, true
	if dl, ok := ctx.Deadline(); ok {
		if until := time.Until(dl); until < left {
			// The caller's deadline comes first: it bounds the request
			// as it is, without a context (and a timer) of its own.
			left, own = until, false
		}
	}
	if left <= 0 {
		return nil, fmt.Errorf("%w (deadline passed before the request was sent)", errTimeout)
	}
	if own {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, left)
		defer cancel()
	}
	l.setTimeout(left)
	l.h.SetSlave(unit)
	res, err := op(ctx, l.client)
	l.lastDone = time.Now()
	if err == nil {
		return res, nil
	}
	var ex *gridx.Error
	if l.cfg.transport != transportTCP && !errors.As(err, &ex) {
		// RTU frames carry no transaction id: after a timeout or a garbled
		// frame, a late answer may still arrive and be taken for the answer
		// to the next request. Reopening the port (or connection) discards
		// whatever is in flight.
		l.h.Close()
		l.connected = false
	}
	switch {
	case isTimeout(err):
		return nil, fmt.Errorf("%w after %s: %w", errTimeout, left.Round(time.Millisecond), err)
	case isBroken(err):
		// The connection itself failed (reset, closed): drop it; the next
		// request reconnects (and backs off if that fails).
		l.h.Close()
		l.connected = false
		l.log.Debug("modbus: connection lost", "err", err)
		return nil, &errLinkDown{err}
	}
	return nil, err
}

// failed records a connection failure and schedules the next attempt.
func (l *link) failed(err error) {
	l.failures++
	b := reconnect.Delay(l.failures)
	l.retryAt = time.Now().Add(b)
	if l.failures == 1 || l.failures%10 == 0 {
		l.log.Warn("modbus: connection failed; retrying with back-off", "err", err, "failures", l.failures, "next_attempt_in", b)
	}
	l.lastErr = err
}

func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if errors.Is(err, serial.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// grid-x's RTU reader gives up with this text when bytes keep coming
	// but no frame for us completes in time.
	return err != nil && strings.Contains(err.Error(), "within deadline")
}

// isBroken reports an error of the connection itself, not of one request.
func isBroken(err error) bool {
	var ge *gridx.Error
	if errors.As(err, &ge) {
		return false
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
