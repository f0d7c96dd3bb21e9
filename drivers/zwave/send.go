package zwave

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Timing of the security and supervision exchanges.
const (
	nonceTimeout   = 5 * time.Second        // a node's answer to a Nonce Get
	verifyDelivery = 500 * time.Millisecond // a node that cannot decrypt says so at once
)

// sendOpts say how a command goes to a node.
type sendOpts struct {
	ep     byte     // destination endpoint (Multi Channel), 0: the node itself
	class  secClass // security; secNone: the node's highest class
	plain  bool     // without security whatever the node's class (key exchange)
	secret bool     // the frame carries a key: never log its bytes
}

// lockNode takes the node for one exchange (a request and its answer, a
// nonce exchange): exchanges with one node never interleave, exchanges
// with different nodes do.
func (c *Connector) lockNode(ctx context.Context, node byte) (func(), error) {
	c.nmu.Lock()
	l := c.nodeLocks[node]
	if l == nil {
		l = make(chan struct{}, 1)
		c.nodeLocks[node] = l
	}
	c.nmu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("zwave: waiting for node %d: %w", node, ctx.Err())
	}
}

// classOf is the security a command to node uses.
func (c *Connector) classOf(node byte, o sendOpts) secClass {
	if o.plain {
		return secNone
	}
	if o.class != secNone {
		return o.class
	}
	return c.store.record(node).highest()
}

func isNonceReportS2(node byte) func(rxMsg) bool {
	return func(m rxMsg) bool { return m.node == node && m.sec == secNone && m.is(ccSecurity2, s2NonceReport) }
}

func isNonceReportS0(node byte) func(rxMsg) bool {
	return func(m rxMsg) bool { return m.node == node && m.is(ccSecurity0, s0NonceReport) && len(m.cmd) >= 10 }
}

// transmit sends cmd to node once, encapsulated as the node needs it,
// exchanging nonces first when needed. For an S2 frame it returns a
// waiter that catches the Nonce Report a node sends when it could not
// decrypt the frame; the caller sends once more if it fires, and drops
// the waiter when done.
func (c *Connector) transmit(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts) (*msgWaiter, error) {
	payload := cmd
	if o.ep != 0 {
		payload = append([]byte{ccMultiChannel, cmdMultiChannelEnc, 0x00, o.ep}, cmd...)
	}
	class := c.classOf(node, o)
	switch class {
	case secNone:
		return nil, ctl.sendDataWith(ctx, node, o.secret, func() ([]byte, error) { return payload, nil })
	case secS0:
		rn, err := c.s0Nonce(ctx, ctl, node)
		if err != nil {
			return nil, err
		}
		return nil, ctl.sendDataWith(ctx, node, o.secret, func() ([]byte, error) { return c.sec.s0Wrap(node, rn, payload) })
	}
	for attempt := 0; ; attempt++ {
		var resync *msgWaiter
		err := ctl.sendDataWith(ctx, node, o.secret, func() ([]byte, error) {
			b, err := c.sec.s2Wrap(node, class, payload)
			if err == nil {
				resync = c.expect(isNonceReportS2(node))
			}
			return b, err
		})
		if errors.Is(err, errNeedNonce) && attempt == 0 {
			if err := c.s2Nonce(ctx, ctl, node); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			if resync != nil {
				c.unexpect(resync)
			}
			return nil, err
		}
		return resync, nil
	}
}

// s2Nonce asks a node for its entropy (Nonce Get → Nonce Report).
func (c *Connector) s2Nonce(ctx context.Context, ctl *controller, node byte) error {
	w := c.expect(isNonceReportS2(node))
	defer c.unexpect(w)
	if err := ctl.sendData(ctx, node, c.sec.s2NonceGet(node)); err != nil {
		return err
	}
	_, err := c.waitMsg(ctx, ctl, w, nonceTimeout, fmt.Sprintf("S2 nonce from node %d", node))
	return err
}

// s0Nonce asks a node for a nonce for our next S0 frame.
func (c *Connector) s0Nonce(ctx context.Context, ctl *controller, node byte) ([]byte, error) {
	w := c.expect(isNonceReportS0(node))
	defer c.unexpect(w)
	if err := ctl.sendData(ctx, node, []byte{ccSecurity0, s0NonceGet}); err != nil {
		return nil, err
	}
	m, err := c.waitMsg(ctx, ctl, w, nonceTimeout, fmt.Sprintf("S0 nonce from node %d", node))
	if err != nil {
		return nil, err
	}
	return m.cmd[2:10], nil
}

// waitEither waits for w and, when resync is set, for a Nonce Report
// saying the node could not decrypt what we sent.
func (c *Connector) waitEither(ctx context.Context, ctl *controller, w, resync *msgWaiter, d time.Duration, what string) (m rxMsg, resynced bool, err error) {
	if resync == nil {
		m, err = c.waitMsg(ctx, ctl, w, d, what)
		return m, false, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case m = <-w.ch:
		return m, false, nil
	case <-resync.ch:
		return rxMsg{}, true, nil
	case <-t.C:
		return rxMsg{}, false, fmt.Errorf("zwave: %s: no answer within %s", what, d)
	case <-ctx.Done():
		return rxMsg{}, false, fmt.Errorf("zwave: %s: %w", what, ctx.Err())
	case <-ctl.link.done:
		return rxMsg{}, false, fmt.Errorf("zwave: %s: %w: %v", what, errLinkDown, ctl.link.err)
	}
}

func (c *Connector) unexpectAll(ws ...*msgWaiter) {
	for _, w := range ws {
		if w != nil {
			c.unexpect(w)
		}
	}
}

// request sends cmd and returns the node's answer (match), resending once
// when the node could not decrypt it.
func (c *Connector) request(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts, match func(rxMsg) bool, d time.Duration, what string) (rxMsg, error) {
	unlock, err := c.lockNode(ctx, node)
	if err != nil {
		return rxMsg{}, err
	}
	defer unlock()
	return c.requestLocked(ctx, ctl, node, cmd, o, match, d, what)
}

func (c *Connector) requestLocked(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts, match func(rxMsg) bool, d time.Duration, what string) (rxMsg, error) {
	for attempt := 0; ; attempt++ {
		w := c.expect(func(m rxMsg) bool { return m.node == node && m.ep == o.ep && match(m) })
		resync, err := c.transmit(ctx, ctl, node, cmd, o)
		if err != nil {
			c.unexpect(w)
			return rxMsg{}, err
		}
		c.alive(node)
		m, resynced, err := c.waitEither(ctx, ctl, w, resync, d, what)
		c.unexpectAll(w, resync)
		if resynced {
			if attempt == 0 {
				c.log.Info("zwave: node could not decrypt a command; nonces resynchronised, sending it again", "node", node)
				continue
			}
			return rxMsg{}, fmt.Errorf("zwave: %s: node %d could not decrypt the command twice (are its keys ours?)", what, node)
		}
		return m, err
	}
}

// send sends a command that has no answer. A secure frame the node could
// not decrypt is sent once more with new nonces.
func (c *Connector) send(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts) error {
	unlock, err := c.lockNode(ctx, node)
	if err != nil {
		return err
	}
	defer unlock()
	return c.sendLocked(ctx, ctl, node, cmd, o)
}

func (c *Connector) sendLocked(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts) error {
	for attempt := 0; ; attempt++ {
		resync, err := c.transmit(ctx, ctl, node, cmd, o)
		if err != nil {
			return err
		}
		c.alive(node)
		if resync == nil {
			return nil
		}
		t := time.NewTimer(verifyDelivery)
		var resynced bool
		select {
		case <-resync.ch:
			resynced = true
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		c.unexpect(resync)
		if !resynced {
			return nil
		}
		if attempt > 0 {
			return fmt.Errorf("zwave: send to node %d: the node could not decrypt the command twice (are its keys ours?)", node)
		}
		c.log.Info("zwave: node could not decrypt a command; nonces resynchronised, sending it again", "node", node)
	}
}

// Errors of a supervised command, from the node's Supervision Report.
var (
	errSupFail      = errors.New("the node reports the command failed (supervision: fail)")
	errSupNoSupport = errors.New("the node does not support the command (supervision: no support)")
)

// supervises reports whether commands to a node go inside Supervision, so
// that the node tells whether they worked.
func (c *Connector) supervises(node byte) bool {
	if c.store.record(node).secureCC(ccSupervision) {
		return true
	}
	return c.supportsPlain(node, ccSupervision)
}

// setCmd sends a Set: supervised when the node supports it (the answer
// says whether it worked), else plainly.
func (c *Connector) setCmd(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts) error {
	unlock, err := c.lockNode(ctx, node)
	if err != nil {
		return err
	}
	defer unlock()
	if !c.supervises(node) {
		return c.sendLocked(ctx, ctl, node, cmd, o)
	}
	return c.supervisedLocked(ctx, ctl, node, cmd, o)
}

func (c *Connector) nextSession(node byte) byte {
	c.nmu.Lock()
	defer c.nmu.Unlock()
	s := c.sessions[node]%63 + 1
	c.sessions[node] = s
	return s
}

// supervisedLocked sends cmd inside a Supervision Get and waits for the
// node's final Supervision Report.
func (c *Connector) supervisedLocked(ctx context.Context, ctl *controller, node byte, cmd []byte, o sendOpts) error {
	sid := c.nextSession(node)
	wrapped := append([]byte{ccSupervision, supGetCmd, 0x80 | sid, byte(len(cmd))}, cmd...)
	w := c.expectN(4, true, func(m rxMsg) bool {
		return m.node == node && m.ep == o.ep && m.is(ccSupervision, supReportCmd) && len(m.cmd) >= 4 && m.cmd[2]&0x3F == sid
	})
	defer c.unexpect(w)
	what := fmt.Sprintf("supervised command to node %d", node)
	var m rxMsg
	for attempt := 0; ; attempt++ {
		resync, err := c.transmit(ctx, ctl, node, wrapped, o)
		if err != nil {
			return err
		}
		c.alive(node)
		var resynced bool
		m, resynced, err = c.waitEither(ctx, ctl, w, resync, c.set.ReportTimeout, what)
		c.unexpectAll(resync)
		if resynced && attempt == 0 {
			c.log.Info("zwave: node could not decrypt a command; nonces resynchronised, sending it again", "node", node)
			continue
		}
		if resynced {
			return fmt.Errorf("zwave: %s: the node could not decrypt it twice (are its keys ours?)", what)
		}
		if err != nil {
			return err
		}
		break
	}
	for {
		switch st := m.cmd[3]; st {
		case supSuccess:
			return nil
		case supFail:
			return fmt.Errorf("zwave: %s: %w", what, errSupFail)
		case supNoSupport:
			return fmt.Errorf("zwave: %s: %w", what, errSupNoSupport)
		case supWorking:
			wait := c.set.ReportTimeout + durationOf(m.cmd)
			var err error
			if m, err = c.waitMsg(ctx, ctl, w, wait, what+" (working)"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("zwave: %s: unknown supervision status 0x%02X", what, st)
		}
	}
}

// durationOf reads the duration byte of a Supervision Report (seconds up
// to 127, then minutes).
func durationOf(rep []byte) time.Duration {
	if len(rep) < 5 {
		return 0
	}
	d := rep[4]
	switch {
	case d <= 0x7F:
		return time.Duration(d) * time.Second
	case d <= 0xFD:
		return time.Duration(d-0x7F) * time.Minute
	}
	return 0
}
