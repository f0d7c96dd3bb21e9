package mbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.bug.st/serial"
)

// PortConfig is how a serial M-Bus line is opened and timed.
type PortConfig struct {
	// Path is the serial device ("/dev/ttyUSB0"), already resolved.
	Path string
	// Baud is the line speed (default 2400).
	Baud int
	// Parity is "even" (default, as EN 13757-2 wants), "none" or "odd".
	Parity string
	// Timeout is how long a meter may take to start its reply (default:
	// 330 bit times + 50 ms as EN 13757-2 allows, plus 200 ms of margin).
	Timeout time.Duration
	// Retries is how often a request that got no reply or a damaged reply
	// is repeated, with the same FCB (0 means the default, 2; -1 none).
	Retries int
	// MaxTelegrams bounds a multi-telegram readout (default 16).
	MaxTelegrams int
	// Echo is set for level converters that echo every byte the master
	// sends: the echo is read and checked before the reply.
	Echo bool
}

func (c *PortConfig) defaults() {
	if c.Baud == 0 {
		c.Baud = 2400
	}
	if c.Parity == "" {
		c.Parity = "even"
	}
	if c.Timeout == 0 {
		c.Timeout = time.Duration(330*float64(time.Second)/float64(c.Baud)) + 250*time.Millisecond
	}
	switch {
	case c.Retries == 0:
		c.Retries = 2
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.MaxTelegrams == 0 {
		c.MaxTelegrams = 16
	}
}

func (c *PortConfig) mode() (*serial.Mode, error) {
	m := &serial.Mode{BaudRate: c.Baud, DataBits: 8, StopBits: serial.OneStopBit}
	switch c.Parity {
	case "even":
		m.Parity = serial.EvenParity
	case "none":
		m.Parity = serial.NoParity
	case "odd":
		m.Parity = serial.OddParity
	default:
		return nil, fmt.Errorf("parity %q: want even, none or odd", c.Parity)
	}
	return m, nil
}

// port is what the bus needs of a serial port (go.bug.st/serial.Port).
type port interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
	ResetInputBuffer() error
}

// Bus owns one serial M-Bus line. Every transaction of every meter on the
// line goes through it, one at a time: a caller waits for the line at most
// until its ctx ends. The port is opened on first use and reopened after
// an I/O error.
type Bus struct {
	cfg  PortConfig
	log  *slog.Logger
	open func(path string, m *serial.Mode) (port, error)
	line chan struct{} // holds a token while a transaction runs

	// Owned by whoever holds the line.
	closed     bool
	port       port
	rbuf       [256]byte
	rpos, rlen int
	frame      []byte
	requests   int // transactions sent, for scans
}

// NewBus prepares a bus; it does no I/O.
func NewBus(cfg PortConfig, log *slog.Logger) *Bus {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Bus{
		cfg:  cfg,
		log:  log.With("port", cfg.Path),
		open: openSerial,
		line: make(chan struct{}, 1),
	}
}

func openSerial(path string, m *serial.Mode) (port, error) {
	return serial.Open(path, m)
}

// ErrClosed is a request on a bus that was closed.
var ErrClosed = errors.New("bus closed")

// Close closes the port once the running transaction, if any, is done;
// later requests fail with ErrClosed.
func (b *Bus) Close() error {
	b.line <- struct{}{}
	defer func() { <-b.line }()
	b.closed = true
	return b.closePort()
}

func (b *Bus) closePort() error {
	if b.port == nil {
		return nil
	}
	err := b.port.Close()
	b.port = nil
	return err
}

// with runs fn holding the line, with the port open.
func (b *Bus) with(ctx context.Context, fn func() error) error {
	select {
	case b.line <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the bus: %w", ctx.Err())
	}
	defer func() { <-b.line }()
	if b.closed {
		return ErrClosed
	}
	if b.port == nil {
		m, err := b.cfg.mode()
		if err != nil {
			return err
		}
		p, err := b.open(b.cfg.Path, m)
		if err != nil {
			return fmt.Errorf("open %s: %w", b.cfg.Path, err)
		}
		b.port = p
		b.rpos, b.rlen = 0, 0
	}
	err := fn()
	if err != nil && !isProtocolError(err) && ctx.Err() == nil {
		b.log.Warn("mbus: closing port after I/O error", "err", err)
		b.closePort()
	}
	return err
}

// isProtocolError is true for errors the meter caused, after which the
// port is still fine.
func isProtocolError(err error) bool {
	var de *DecodeError
	var ae *ApplicationError
	return errors.Is(err, ErrNoReply) || errors.Is(err, ErrChecksum) || errors.Is(err, ErrCollision) ||
		errors.As(err, &de) || errors.As(err, &ae) || errors.Is(err, errUnexpected)
}

var errUnexpected = errors.New("unexpected reply")

// Which failed requests to repeat: a scan does not repeat probes of empty
// addresses, nor selections that collide.
type retry uint8

const (
	retryDamaged retry = 1 << iota
	retrySilence
	retryAll = retryDamaged | retrySilence
)

// request sends req and reads the reply. A request that gets no reply or
// a damaged one is repeated as it is (same FCB), up to Retries times, as
// policy allows.
func (b *Bus) request(ctx context.Context, req []byte, policy retry) (reply, error) {
	var last error
	for try := 0; try <= b.cfg.Retries; try++ {
		if err := ctx.Err(); err != nil {
			return reply{}, err
		}
		b.rpos, b.rlen = 0, 0
		if err := b.port.ResetInputBuffer(); err != nil {
			return reply{}, fmt.Errorf("flush input: %w", err)
		}
		b.requests++
		if _, err := b.port.Write(req); err != nil {
			return reply{}, fmt.Errorf("write: %w", err)
		}
		err := b.readEcho(ctx, req)
		var r reply
		if err == nil {
			r, err = b.readReply(b.replyWait(ctx, len(req)), b.interByte())
		}
		if b.log.Enabled(ctx, slog.LevelDebug) {
			b.log.LogAttrs(ctx, slog.LevelDebug, "mbus: transaction", slog.String("request", fmt.Sprintf("% X", req)),
				slog.Bool("ack", r.ack), slog.String("reply", fmt.Sprintf("% X", r.frame)), slog.Any("err", err))
		}
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ErrNoReply) && !errors.Is(err, ErrChecksum) {
			return reply{}, err
		}
		last = err
		if errors.Is(err, ErrNoReply) && policy&retrySilence == 0 || errors.Is(err, ErrChecksum) && policy&retryDamaged == 0 {
			break
		}
		if errors.Is(err, ErrChecksum) {
			b.waitQuiet(b.interByte())
		}
		b.log.Debug("mbus: repeating request", "request", fmt.Sprintf("% X", req), "try", try+1, "err", err)
	}
	return reply{}, last
}

// readEcho reads back the request from a converter that echoes it. An
// echo that differs means another station was sending at the same time.
func (b *Bus) readEcho(ctx context.Context, req []byte) error {
	if !b.cfg.Echo {
		return nil
	}
	wait := b.replyWait(ctx, len(req))
	for i, want := range req {
		c, err := b.readByte(wait)
		if err != nil {
			return fmt.Errorf("%w: echo of the request missing after %d of %d bytes (is \"echo\" right for this converter?)", ErrChecksum, i, len(req))
		}
		if c != want {
			return fmt.Errorf("%w: echo byte %d is 0x%02X, sent 0x%02X", ErrChecksum, i, c, want)
		}
		wait = b.interByte()
	}
	return nil
}

// replyWait is how long to wait for a reply to start: the time to send the
// request plus the configured timeout, cut short by ctx's deadline.
func (b *Bus) replyWait(ctx context.Context, n int) time.Duration {
	w := time.Duration(n)*charTime(b.cfg.Baud) + b.cfg.Timeout
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < w {
			w = left
		}
	}
	return w
}

// interByte is the longest pause allowed inside a reply: 20 characters, at
// least 50 ms (USB adapters deliver in chunks).
func (b *Bus) interByte() time.Duration {
	return max(20*charTime(b.cfg.Baud), 50*time.Millisecond)
}

// sndNKE initialises a slave: it answers with an ACK and resets its FCB.
func (b *Bus) sndNKE(ctx context.Context, a byte, policy retry) error {
	r, err := b.request(ctx, shortFrame(cSndNKE, a), policy)
	if err != nil {
		return fmt.Errorf("SND_NKE to %d: %w", a, err)
	}
	if !r.ack {
		return fmt.Errorf("SND_NKE to %d: %w: a long frame instead of an ACK", a, errUnexpected)
	}
	return nil
}

// selectSecondary selects the slave(s) matching sec (F = any digit). It
// reports whether one slave acknowledged; ErrCollision when several did,
// ErrNoReply when none did.
func (b *Bus) selectSecondary(ctx context.Context, sec string, policy retry) error {
	d := selectData(sec)
	r, err := b.request(ctx, longFrame(cSndUD, addrSelected, ciSelect, d[:]), policy)
	if err != nil {
		if errors.Is(err, ErrChecksum) {
			return fmt.Errorf("select %s: %w (%v)", sec, ErrCollision, err)
		}
		return fmt.Errorf("select %s: %w", sec, err)
	}
	if !r.ack {
		return fmt.Errorf("select %s: %w: a long frame instead of an ACK", sec, ErrCollision)
	}
	if r.noise > 0 {
		return fmt.Errorf("select %s: %w (%d bytes of noise before the ACK)", sec, ErrCollision, r.noise)
	}
	if n := b.extraBytes(5*charTime(b.cfg.Baud) + 20*time.Millisecond); n > 0 {
		return fmt.Errorf("select %s: %w (%d more bytes after the ACK)", sec, ErrCollision, n)
	}
	return nil
}

// readout asks the slave at a for its data with REQ_UD2, toggling the FCB
// while the meter says more records follow. The first request has FCB set,
// as after SND_NKE.
func (b *Bus) readout(ctx context.Context, a byte, maxTelegrams int) ([]*Telegram, error) {
	var c collector
	err := b.readoutTo(ctx, a, maxTelegrams, c.decode, c.keep)
	return c.out, err
}

// collector decodes each telegram of a readout with Decode and keeps those
// whose address was checked.
type collector struct {
	out []*Telegram
	tg  *Telegram // decoded, not yet kept
}

func (c *collector) decode(frame []byte, _ int) (byte, bool, error) {
	var err error
	if c.tg, err = Decode(frame); err != nil {
		return 0, false, err
	}
	return c.tg.Address, c.tg.More, nil
}

func (c *collector) keep() { c.out = append(c.out, c.tg) }

// readoutTo is readout with the telegrams given to decode, the n-th
// (0-based) as it arrives (frame is only valid during the call), and to
// keep once its address has been checked.
func (b *Bus) readoutTo(ctx context.Context, a byte, maxTelegrams int, decode func(frame []byte, n int) (addr byte, more bool, err error), keep func()) error {
	fcb := true
	for n := 0; n < maxTelegrams; n++ {
		c := byte(cReqUD2)
		if fcb {
			c |= fcbBit
		}
		r, err := b.request(ctx, shortFrame(c, a), retryAll)
		if err != nil {
			return fmt.Errorf("REQ_UD2 to %d (telegram %d): %w", a, n+1, err)
		}
		if r.ack {
			return fmt.Errorf("REQ_UD2 to %d: %w: an ACK instead of data", a, errUnexpected)
		}
		from, more, err := decode(r.frame, n)
		if err != nil {
			return fmt.Errorf("REQ_UD2 to %d (telegram %d): %w", a, n+1, err)
		}
		if a <= addrMaxPrimary && from != a {
			return fmt.Errorf("REQ_UD2 to %d: %w: reply from address %d", a, errUnexpected, from)
		}
		keep()
		if !more {
			return nil
		}
		fcb = !fcb
	}
	if maxTelegrams == b.cfg.MaxTelegrams {
		b.log.Warn("mbus: meter still has more records after the telegram limit", "address", a, "max_telegrams", maxTelegrams)
	}
	return nil
}

// Read reads all telegrams of the meter at addr: SND_NKE and REQ_UD2 for a
// primary address; for a secondary address select, SND_NKE to the selected
// meter (which resets its FCB and ends the selection), select again and
// REQ_UD2 to address 253.
func (b *Bus) Read(ctx context.Context, addr Address) ([]*Telegram, error) {
	var c collector
	err := b.read(ctx, addr, c.decode, c.keep)
	return c.out, err
}

// ReadInto reads the meter at addr as Read does, decoding its telegrams
// into d: afterwards d.Fields holds the records of all of them, and
// d.Header the header of the last.
func (b *Bus) ReadInto(ctx context.Context, addr Address, d *Decoder) error {
	return b.read(ctx, addr, func(frame []byte, n int) (byte, bool, error) {
		var err error
		if n == 0 {
			err = d.Decode(frame)
		} else {
			err = d.DecodeMore(frame)
		}
		return d.Address, d.More, err
	}, func() {})
}

func (b *Bus) read(ctx context.Context, addr Address, decode func(frame []byte, n int) (byte, bool, error), keep func()) error {
	err := b.with(ctx, func() error {
		if addr.Secondary == "" {
			a := byte(addr.Primary)
			if err := b.sndNKE(ctx, a, retryAll); err != nil {
				return err
			}
			return b.readoutTo(ctx, a, b.cfg.MaxTelegrams, decode, keep)
		}
		if err := b.selectSecondary(ctx, addr.Secondary, retryAll); err != nil {
			return err
		}
		if err := b.sndNKE(ctx, addrSelected, retryAll); err != nil {
			return err
		}
		if err := b.selectSecondary(ctx, addr.Secondary, retryAll); err != nil {
			return err
		}
		return b.readoutTo(ctx, addrSelected, b.cfg.MaxTelegrams, decode, keep)
	})
	if err != nil {
		return fmt.Errorf("mbus: read %s on %s: %w", addr, b.cfg.Path, err)
	}
	return nil
}
