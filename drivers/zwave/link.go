package zwave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Link-layer timing from the Serial API: a frame is ACKed within 1600 ms;
// the host retransmits at most three times, waiting 100 ms + n×1000 ms
// before the n-th (0-based) retransmission.
const (
	ackTimeout    = 1600 * time.Millisecond
	maxRetransmit = 3
)

var (
	errNAK        = errors.New("controller answered NAK")
	errCAN        = errors.New("controller answered CAN (its own frame crossed ours)")
	errAckTimeout = errors.New("no ACK from the controller")
)

// link owns the serial port of one stick: a reader goroutine that re-frames
// input, ACKs every good data frame (NAKs a bad one) and hands it to
// onFrame, and send, which puts one frame at a time on the wire and waits
// for its ACK, retransmitting after NAK, CAN or timeout.
type link struct {
	port io.ReadWriteCloser
	log  *slog.Logger

	wmu  sync.Mutex // serialises writes: frames and our ACK/NAK bytes
	smu  sync.Mutex // one frame in flight at a time
	acks chan byte  // ACK, NAK and CAN from the controller

	done      chan struct{} // closed when the reader stops
	err       error         // why the reader stopped; read after done
	closeOnce sync.Once
}

// newLink starts the reader of port; onFrame runs on the reader goroutine
// for every good data frame and must not block.
func newLink(port io.ReadWriteCloser, log *slog.Logger, onFrame func(frame)) *link {
	l := &link{port: port, log: log, acks: make(chan byte, 8), done: make(chan struct{})}
	go l.read(onFrame)
	return l
}

func (l *link) read(onFrame func(frame)) {
	defer close(l.done)
	var p parser
	buf := make([]byte, 512)
	for {
		n, err := l.port.Read(buf)
		if err != nil {
			l.err = fmt.Errorf("zwave: read from stick: %w", err)
			return
		}
		if n == 0 {
			continue
		}
		p.feed(buf[:n], time.Now())
		for {
			ev, ok := p.next()
			if !ok {
				break
			}
			if ev.Header != sof {
				select {
				case l.acks <- ev.Header:
				default:
					l.log.Debug("zwave: header byte with nobody waiting", "byte", fmt.Sprintf("0x%02X", ev.Header))
				}
				continue
			}
			if ev.Err != nil {
				l.log.Warn("zwave: frame from stick failed its checksum, NAK sent", "err", ev.Err)
				l.writeByte(nak)
				continue
			}
			l.writeByte(ack)
			onFrame(ev.Frame)
		}
	}
}

func (l *link) writeByte(b byte) {
	if err := l.write([]byte{b}); err != nil {
		l.log.Warn("zwave: write to stick failed", "err", err)
	}
}

func (l *link) write(b []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.port.Write(b)
	return err
}

// send writes f and waits for the controller's ACK, retransmitting up to
// maxRetransmit times.
func (l *link) send(ctx context.Context, f frame) error {
	raw, err := f.encode()
	if err != nil {
		return err
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	var last error
	for attempt := 0; attempt <= maxRetransmit; attempt++ {
		if attempt > 0 {
			l.log.Debug("zwave: retransmitting", "frame", f.String(), "attempt", attempt, "after", last)
			if err := l.sleep(ctx, 100*time.Millisecond+time.Duration(attempt-1)*time.Second); err != nil {
				return err
			}
		}
		l.drainAcks()
		if err := l.write(raw); err != nil {
			return fmt.Errorf("zwave: write %s: %w", f, err)
		}
		last = l.waitAck(ctx)
		if last == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(last, errLinkDown) {
			return last
		}
	}
	return fmt.Errorf("zwave: send %s: %d retransmissions failed: %w", f, maxRetransmit, last)
}

var errLinkDown = errors.New("zwave: link to stick is down")

func (l *link) waitAck(ctx context.Context) error {
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	select {
	case h := <-l.acks:
		switch h {
		case ack:
			return nil
		case nak:
			return errNAK
		default:
			return errCAN
		}
	case <-t.C:
		return errAckTimeout
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return fmt.Errorf("%w: %v", errLinkDown, l.err)
	}
}

func (l *link) drainAcks() {
	for {
		select {
		case <-l.acks:
		default:
			return
		}
	}
}

func (l *link) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return fmt.Errorf("%w: %v", errLinkDown, l.err)
	}
}

// close closes the port and waits for the reader to stop.
func (l *link) close() error {
	var err error
	l.closeOnce.Do(func() { err = l.port.Close() })
	<-l.done
	return err
}
