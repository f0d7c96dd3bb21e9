package zwave

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// rxMsg is a command received from a node with its encapsulations
// removed: Transport Service, CRC-16, Security 0/2, Multi Channel and
// Supervision.
type rxMsg struct {
	node  byte
	ep    byte // source endpoint (Multi Channel), 0: the node itself
	dstEP byte
	cmd   []byte   // command class, command, parameters
	sec   secClass // the security it arrived with
	super *supGet  // set when the command came inside a Supervision Get
	at    time.Time
}

// supGet is the Supervision Get a command came in.
type supGet struct {
	session byte
	updates bool
}

func (m rxMsg) is(cc, cmd byte) bool { return len(m.cmd) >= 2 && m.cmd[0] == cc && m.cmd[1] == cmd }

// maxEncapDepth bounds the layers unwrapped from one frame.
const maxEncapDepth = 8

// Supervision (0x6C) and CRC-16 (0x56).
const (
	ccTransportService = 0x55
	ccCRC16            = 0x56
	ccSupervision      = 0x6C
	ccWakeUp           = 0x84
	ccDeviceReset      = 0x5A

	supGetCmd    = 0x01
	supReportCmd = 0x02
	crc16Encap   = 0x01

	supNoSupport = 0x00
	supWorking   = 0x01
	supFail      = 0x02
	supSuccess   = 0xFF
)

// onAppCommand takes a node's command from ApplicationCommandHandler; it
// runs on the link's reader goroutine and never blocks.
func (c *Connector) onAppCommand(ctl *controller, f frame) {
	if ctl.holdUntilReady(f) {
		c.appCommand(ctl, f)
	}
}

// appCommand handles a node's command once the session is ready.
func (c *Connector) appCommand(ctl *controller, f frame) {
	node, cmd, err := parseAppCommand(f)
	if err != nil {
		c.drop("malformed", 0, err)
		return
	}
	c.receive(ctl, node, cmd, time.Now())
}

// receive unwraps a command layer by layer, answers what must be
// answered (nonces, Supervision, Transport Service), checks the node's
// security and hands the command to a waiting request or to the reports.
func (c *Connector) receive(ctl *controller, node byte, cmd []byte, at time.Time) {
	m := rxMsg{node: node, cmd: cmd, at: at}
	for depth := 0; ; depth++ {
		if depth == maxEncapDepth {
			c.drop("malformed", node, fmt.Errorf("more than %d encapsulations", maxEncapDepth))
			return
		}
		if len(m.cmd) < 2 {
			if len(m.cmd) == 1 && m.cmd[0] == 0x00 {
				return // NOP
			}
			c.drop("malformed", node, fmt.Errorf("command of %d bytes", len(m.cmd)))
			return
		}
		switch cc, cm := m.cmd[0], m.cmd[1]; {
		case cc == ccTransportService:
			dg, err := c.ts.feed(c, ctl, m)
			if err != nil {
				c.drop("transport", node, err)
				return
			}
			if dg == nil {
				return // more segments to come
			}
			m.cmd = dg
			continue
		case cc == ccCRC16 && cm == crc16Encap:
			inner, err := unwrapCRC16(m.cmd)
			if err != nil {
				c.drop("crc", node, err)
				return
			}
			m.cmd = inner
			continue
		case cc == ccSecurity2:
			if !c.receiveS2(ctl, &m) {
				return
			}
			continue
		case cc == ccSecurity0:
			if !c.receiveS0(ctl, &m) {
				return
			}
			continue
		case cc == ccMultiChannel && cm == cmdMultiChannelEnc:
			if m.ep != 0 || len(m.cmd) < 4 {
				c.drop("malformed", node, fmt.Errorf("multi channel encapsulation % X", m.cmd))
				return
			}
			m.ep, m.dstEP, m.cmd = m.cmd[2]&0x7F, m.cmd[3]&0x7F, m.cmd[4:]
			continue
		case cc == ccSupervision && cm == supGetCmd:
			if m.super != nil || len(m.cmd) < 4 || len(m.cmd) < 4+int(m.cmd[3]) {
				c.drop("malformed", node, fmt.Errorf("supervision get % X", m.cmd))
				return
			}
			m.super = &supGet{session: m.cmd[2] & 0x3F, updates: m.cmd[2]&0x80 != 0}
			m.cmd = m.cmd[4 : 4+int(m.cmd[3])]
			continue
		}
		break
	}
	if err := c.checkSecurity(m); err != nil {
		c.drop("insecure", node, err)
		return
	}
	handled := c.deliver(m) || c.handle(ctl, m)
	if m.super != nil {
		status := byte(supSuccess)
		if !handled {
			status = supNoSupport
		}
		c.replySupervision(ctl, m, status)
	}
}

// receiveS2 handles a Security 2 command; true when m now holds the
// decrypted inner command to unwrap further.
func (c *Connector) receiveS2(ctl *controller, m *rxMsg) bool {
	switch m.cmd[1] {
	case s2NonceGet:
		if len(m.cmd) < 3 {
			c.drop("malformed", m.node, errS2Malformed)
			return false
		}
		c.replyPlain(ctl, m.node, "S2 nonce report", c.sec.s2NonceReport(m.node))
		return false
	case s2NonceReport:
		sos, err := c.sec.s2OnNonceReport(m.node, m.cmd[2:])
		if err != nil {
			c.drop("s2", m.node, err)
			return false
		}
		if sos {
			c.deliver(*m)
		}
		return false
	case s2Encap:
		if m.sec != secNone {
			c.drop("malformed", m.node, errors.New("S2 inside S2"))
			return false
		}
		inner, class, err := c.sec.s2Unwrap(m.node, m.cmd[2:], c.candidates(m.node))
		if err != nil {
			c.secFailure(m.node, err)
			if errors.Is(err, errS2Decrypt) && c.sec.exchanging(m.node) {
				// A running key exchange learns of it at once (a wrong PIN).
				c.deliver(rxMsg{node: m.node, cmd: []byte{ccSecurity2, kexDecryptFailed}, at: m.at})
			}
			if errors.Is(err, errS2NoSPAN) || errors.Is(err, errS2Decrypt) {
				c.replyPlain(ctl, m.node, "S2 nonce report", c.sec.s2NonceReport(m.node))
			}
			return false
		}
		m.cmd, m.sec = inner, class
		return len(inner) > 0
	default:
		// Key exchange commands, plain (KEX Report, Public Key, KEX Fail)
		// or decrypted with the temporary key: for the inclusion.
		c.deliver(*m)
		return false
	}
}

// receiveS0 handles a Security 0 command; true when m now holds the
// decrypted inner command.
func (c *Connector) receiveS0(ctl *controller, m *rxMsg) bool {
	switch m.cmd[1] {
	case s0NonceGet:
		c.replyPlain(ctl, m.node, "S0 nonce report", c.sec.s0NonceReport(m.node))
		return false
	case s0NonceReport:
		c.deliver(*m)
		return false
	case s0Encap, s0EncapNonceGet:
		if m.sec != secNone {
			c.drop("malformed", m.node, errors.New("S0 inside a secure frame"))
			return false
		}
		if m.cmd[1] == s0EncapNonceGet {
			c.replyPlain(ctl, m.node, "S0 nonce report", c.sec.s0NonceReport(m.node))
		}
		inner, err := c.sec.s0Unwrap(m.node, m.cmd[1], m.cmd[2:])
		if err != nil {
			c.secFailure(m.node, err)
			return false
		}
		if inner == nil {
			return false // first half of a two-frame message
		}
		m.cmd, m.sec = inner, secS0
		return true
	default:
		// Scheme Report (plain), Network Key Verify and Commands
		// Supported Report (inside S0): for the inclusion.
		c.deliver(*m)
		return false
	}
}

// candidates are the classes a new SPAN with the node may use, highest
// first: the temporary key and the key being verified while the node is
// included, else the classes it was granted.
func (c *Connector) candidates(node byte) []secClass {
	c.sec.mu.Lock()
	p := c.sec.peer(node)
	temp, verifying := p.temp != nil, p.verifying
	c.sec.mu.Unlock()
	if temp {
		out := []secClass{secTemp}
		if verifying != secNone {
			out = append(out, verifying)
		}
		return out
	}
	var out []secClass
	for _, cl := range c.store.record(node).classes() {
		if cl.isS2() {
			out = append(out, cl)
		}
	}
	return out
}

// checkSecurity refuses a command that arrived below the node's security:
// a node included securely speaks at its highest class; a plain command
// is taken only for a command class the node lists as not secure.
func (c *Connector) checkSecurity(m rxMsg) error {
	r := c.store.record(m.node)
	high := r.highest()
	if high == secNone || m.sec == high {
		return nil
	}
	if m.sec != secNone {
		return fmt.Errorf("node %d sent command class 0x%02X with %s, below its %s", m.node, m.cmd[0], m.sec, high)
	}
	if r.SecureCCs != nil && !r.secureCC(m.cmd[0]) && c.supportsPlain(m.node, m.cmd[0]) {
		return nil
	}
	return fmt.Errorf("node %d is included with %s but sent command class 0x%02X without security", m.node, high, m.cmd[0])
}

// supportsPlain reports whether a node's node information lists cc.
func (c *Connector) supportsPlain(node, cc byte) bool {
	ctl, _ := c.current()
	if ctl == nil {
		return false
	}
	_, _, _, info := ctl.snapshot()
	for _, x := range info[node].CCs {
		if x == cc {
			return true
		}
	}
	return false
}

// msgWaiter is a request waiting for a command from a node.
type msgWaiter struct {
	match func(rxMsg) bool
	ch    chan rxMsg
	keep  bool // stays registered after a match (a key exchange)
}

// expect registers a waiter before the command that provokes the answer
// is sent.
func (c *Connector) expect(match func(rxMsg) bool) *msgWaiter {
	return c.expectN(1, false, match)
}

func (c *Connector) expectN(n int, keep bool, match func(rxMsg) bool) *msgWaiter {
	w := &msgWaiter{match: match, ch: make(chan rxMsg, n), keep: keep}
	c.wmu.Lock()
	c.waiters = append(c.waiters, w)
	c.wmu.Unlock()
	return w
}

func (c *Connector) unexpect(w *msgWaiter) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return
		}
	}
}

// deliver hands m to the first waiter that wants it.
func (c *Connector) deliver(m rxMsg) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i, w := range c.waiters {
		if w.match(m) {
			select {
			case w.ch <- m:
			default:
				c.log.Warn("zwave: a request's answer came twice; the second is dropped", "node", m.node)
			}
			if !w.keep {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			}
			return true
		}
	}
	return false
}

// waitMsg takes the next command of w within d.
func (c *Connector) waitMsg(ctx context.Context, ctl *controller, w *msgWaiter, d time.Duration, what string) (rxMsg, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case m := <-w.ch:
		return m, nil
	case <-t.C:
		return rxMsg{}, fmt.Errorf("zwave: %s: no answer within %s", what, d)
	case <-ctx.Done():
		return rxMsg{}, fmt.Errorf("zwave: %s: %w", what, ctx.Err())
	case <-ctl.link.done:
		return rxMsg{}, fmt.Errorf("zwave: %s: %w: %v", what, errLinkDown, ctl.link.err)
	}
}

// handle acts on a command nobody waited for: wake-up notifications,
// reports. It returns false for a command the driver does not use.
func (c *Connector) handle(ctl *controller, m rxMsg) bool {
	switch {
	case m.is(ccWakeUp, wakeUpNotification):
		c.alive(m.node)
		c.wakeUp(ctl, m.node)
		return true
	case m.is(ccWakeUp, wakeUpIntervalReport):
		c.learnWakeUpInterval(m)
		return true
	case m.is(ccDeviceReset, 0x01):
		c.log.Warn("zwave: node says it was reset to factory settings and left the network; remove it with zwave.remove_failed", "node", m.node)
		return true
	case m.is(ccSupervision, supReportCmd):
		return true // a late answer to a supervised command
	}
	return c.report(m)
}

// reply is a frame the driver owes a node: a nonce, a Supervision Report,
// a Transport Service answer. build runs with the bus taken, so that S2
// nonces are used in the order frames go out.
type reply struct {
	node  byte
	what  string
	build func() ([]byte, error)
}

// replyQueue bounds the answers waiting for the bus.
const replyQueue = 64

// replyPlain queues a frame that is sent as it is.
func (c *Connector) replyPlain(ctl *controller, node byte, what string, cmd []byte) {
	c.queueReply(ctl, reply{node: node, what: what, build: func() ([]byte, error) { return cmd, nil }})
}

func (c *Connector) queueReply(ctl *controller, r reply) {
	select {
	case ctl.replies <- r:
	default:
		c.drop("reply_queue", r.node, fmt.Errorf("%s not sent: %d answers wait for the bus", r.what, replyQueue))
	}
}

// replySupervision answers a Supervision Get the way it came: same
// security, same endpoint.
func (c *Connector) replySupervision(ctl *controller, m rxMsg, status byte) {
	rep := []byte{ccSupervision, supReportCmd, m.super.session, status, 0x00}
	if m.ep != 0 {
		rep = append([]byte{ccMultiChannel, cmdMultiChannelEnc, m.dstEP, m.ep}, rep...)
	}
	c.queueReply(ctl, reply{node: m.node, what: "supervision report", build: func() ([]byte, error) {
		return c.wrapSecure(m.node, m.sec, rep)
	}})
}

// respond sends the queued answers until the session ends.
func (c *Connector) respond(ctl *controller) {
	for {
		select {
		case r := <-ctl.replies:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := ctl.sendDataWith(ctx, r.node, false, r.build)
			cancel()
			if err != nil {
				c.log.Debug("zwave: answer to a node not sent", "node", r.node, "what", r.what, "err", err)
			}
		case <-ctl.link.done:
			return
		}
	}
}

// wrapSecure encrypts cmd at class cl when the SPAN allows it without a
// nonce exchange (the answers the reader owes).
func (c *Connector) wrapSecure(node byte, cl secClass, cmd []byte) ([]byte, error) {
	switch {
	case cl == secNone:
		return cmd, nil
	case cl == secS0:
		return nil, errors.New("an S0 answer needs a nonce exchange; not sent")
	default:
		return c.sec.s2Wrap(node, cl, cmd)
	}
}

// secFailure counts a secure frame that could not be used.
func (c *Connector) secFailure(node byte, err error) {
	reason := "s2"
	switch {
	case errors.Is(err, errS2Decrypt), errors.Is(err, errS0MAC):
		reason = "decrypt"
	case errors.Is(err, errS2NoSPAN), errors.Is(err, errS0Nonce), errors.Is(err, errNeedNonce):
		reason = "no_nonce"
	case errors.Is(err, errS2Duplicate):
		reason = "duplicate"
	case errors.Is(err, errS2Malformed), errors.Is(err, errS0Malformed):
		reason = "malformed"
	case errors.Is(err, errNoKeys):
		reason = "no_keys"
	}
	c.hmu.Lock()
	h := c.nodeHealth(node)
	h.secFailures++
	c.hmu.Unlock()
	c.drop(reason, node, err)
}
