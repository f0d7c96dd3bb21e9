package zwave

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Serial API function ids used by the driver.
const (
	fnGetInitData       = 0x02
	fnAppCommand        = 0x04
	fnGetCapabilities   = 0x07
	fnSoftReset         = 0x08
	fnSerialAPIStarted  = 0x0A
	fnSendData          = 0x13
	fnGetControllerID   = 0x20
	fnGetProtocolInfo   = 0x41
	fnAppUpdate         = 0x49
	fnAddNode           = 0x4A
	fnRemoveNode        = 0x4B
	fnRequestNodeInfo   = 0x60
	fnBridgeAppCommand  = 0xA8
	responseTimeout     = 10 * time.Second
	sendDataCallbackMax = 65 * time.Second
)

// Transmit options of SendData: ask the node for an ACK, let the controller
// route automatically and explore when routes fail.
const txOptions = 0x01 | 0x04 | 0x20

// Transmit status in a SendData callback.
var txStatusText = map[byte]string{
	0x00: "ok",
	0x01: "no ACK from the node",
	0x02: "transmission failed",
	0x03: "routing not idle",
	0x04: "no route to the node",
	0x05: "no ACK from the node (verified)",
}

var (
	// errNoAck means a node did not acknowledge: it is out of reach, asleep
	// or dead.
	errNoAck = errors.New("node did not acknowledge")
	// errUnsupported means the stick does not implement a function.
	errUnsupported = errors.New("function not supported by this stick")
)

// waiter is a pending expectation of a frame from the controller: a
// response, a callback, a node information update or a report.
type waiter struct {
	match func(frame) bool
	ch    chan frame
}

// controller is the Serial API session with one stick: requests and their
// responses, callbacks matched by id, and what the stick told us about
// itself and its network.
type controller struct {
	link *link
	log  *slog.Logger
	tx   chan struct{} // one transaction on the bus at a time

	// onUnsolicited gets every frame no waiter wanted (reports, NIFs);
	// it runs on the reader goroutine and must not block.
	onUnsolicited func(frame)
	// onNodeFailed learns of a node that did not acknowledge a SendData
	// whose caller had already given up.
	onNodeFailed func(node byte, err error)

	bg sync.WaitGroup // finishSendData goroutines

	// replies are answers the driver owes nodes (nonces, Supervision
	// Reports), sent by the connector's responder.
	replies chan reply

	// Until the session is ready (the node records and keys loaded),
	// nodes' commands wait in early: a secure node's report must not be
	// judged without its record.
	rmu   sync.Mutex
	ready bool
	early []frame

	mu        sync.Mutex
	waiters   []*waiter
	cbID      byte
	supported [32]byte // function id bitmask from GetSerialApiCapabilities
	haveCaps  bool

	// Learned at start.
	homeID  uint32
	ownID   byte
	version string
	nodes   []byte
	info    map[byte]*nodeInfo
}

// nodeInfo is what the stick and the node told us about a node.
type nodeInfo struct {
	Listening bool
	FLiRS     bool // wakes on a beam: reachable though not listening
	Basic     byte
	Generic   byte
	Specific  byte
	CCs       []byte // from the node information frame; nil until asked
}

func newController(log *slog.Logger) *controller {
	return &controller{log: log, tx: make(chan struct{}, 1), info: map[byte]*nodeInfo{}, replies: make(chan reply, replyQueue)}
}

// maxEarly bounds the commands held while the session starts.
const maxEarly = 64

// holdUntilReady keeps a node's command that arrives before the session
// is ready (false: held, or dropped when too many wait).
func (c *controller) holdUntilReady(f frame) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.ready {
		return true
	}
	if len(c.early) < maxEarly {
		c.early = append(c.early, f)
	} else {
		c.log.Warn("zwave: command from a node dropped while the session starts", "frame", f.String())
	}
	return false
}

// setReady hands the held commands to handle (on the caller's
// goroutine) and lets the next ones through.
func (c *controller) setReady(handle func(frame)) {
	for {
		c.rmu.Lock()
		held := c.early
		c.early = nil
		if len(held) == 0 {
			c.ready = true
			c.rmu.Unlock()
			return
		}
		c.rmu.Unlock()
		for _, f := range held {
			handle(f)
		}
	}
}

// close closes the stick and waits for the goroutines of the session.
func (c *controller) close() error {
	err := c.link.close()
	c.bg.Wait()
	return err
}

// dispatch hands a received frame to the first waiter that wants it, or to
// onUnsolicited.
func (c *controller) dispatch(f frame) {
	c.mu.Lock()
	for i, w := range c.waiters {
		if w.match(f) {
			select {
			case w.ch <- f:
			default:
				c.mu.Unlock()
				c.log.Warn("zwave: waiter full, frame dropped", "frame", f.String())
				return
			}
			if cap(w.ch) == 1 {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			}
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	if c.onUnsolicited != nil {
		c.onUnsolicited(f)
	}
}

// expect registers a waiter before the request that provokes the frame is
// sent; n > 1 keeps it for several frames (inclusion callbacks).
func (c *controller) expect(n int, match func(frame) bool) *waiter {
	w := &waiter{match: match, ch: make(chan frame, n)}
	c.mu.Lock()
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	return w
}

func (c *controller) cancel(w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return
		}
	}
}

// wait takes the next frame of w within d.
func (c *controller) wait(ctx context.Context, w *waiter, d time.Duration, what string) (frame, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case f := <-w.ch:
		return f, nil
	case <-t.C:
		return frame{}, fmt.Errorf("zwave: %s: no answer within %s", what, d)
	case <-ctx.Done():
		return frame{}, fmt.Errorf("zwave: %s: %w", what, ctx.Err())
	case <-c.link.done:
		return frame{}, fmt.Errorf("zwave: %s: %w: %v", what, errLinkDown, c.link.err)
	}
}

// lock takes the bus for one transaction; the wait counts against ctx.
func (c *controller) lock(ctx context.Context) error {
	select {
	case c.tx <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("zwave: waiting for the bus: %w", ctx.Err())
	}
}

func (c *controller) unlock() { <-c.tx }

func (c *controller) nextCallbackID() byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cbID++
	if c.cbID == 0 {
		c.cbID = 1
	}
	return c.cbID
}

func (c *controller) supports(fn byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.haveCaps {
		return true
	}
	return c.supported[(fn-1)/8]&(1<<((fn-1)%8)) != 0
}

func isResponse(fn byte) func(frame) bool {
	return func(f frame) bool { return f.Type == typeResponse && f.Func == fn }
}

func isCallback(fn, id byte) func(frame) bool {
	return func(f frame) bool {
		return f.Type == typeRequest && f.Func == fn && len(f.Data) >= 1 && f.Data[0] == id
	}
}

// call sends a request and returns its response; the bus must be locked.
func (c *controller) call(ctx context.Context, fn byte, data ...byte) (frame, error) {
	return c.callFrame(ctx, frame{Type: typeRequest, Func: fn, Data: data})
}

func (c *controller) callFrame(ctx context.Context, f frame) (frame, error) {
	fn := f.Func
	if !c.supports(fn) {
		return frame{}, fmt.Errorf("zwave: function 0x%02X: %w", fn, errUnsupported)
	}
	w := c.expect(1, isResponse(fn))
	defer c.cancel(w)
	if err := c.link.send(ctx, f); err != nil {
		return frame{}, err
	}
	return c.wait(ctx, w, responseTimeout, fmt.Sprintf("response to function 0x%02X", fn))
}

// request locks the bus for one request/response exchange.
func (c *controller) request(ctx context.Context, fn byte, data ...byte) (frame, error) {
	if err := c.lock(ctx); err != nil {
		return frame{}, err
	}
	defer c.unlock()
	return c.call(ctx, fn, data...)
}

// maxSendData is the longest command SendData carries: a Z-Wave frame
// at 9.6/40 kbit/s holds 46 bytes of payload, and every stick accepts it.
const maxSendData = 46

// sendData sends a command to a node and waits for the transmit callback.
// A node that does not acknowledge gives an error wrapping errNoAck.
func (c *controller) sendData(ctx context.Context, node byte, cmd []byte) error {
	return c.sendDataWith(ctx, node, false, func() ([]byte, error) { return cmd, nil })
}

// sendDataWith is sendData with the command built once the bus is taken
// (S2 nonces must be used in the order frames go out); an error of build
// sends nothing. A secret command's bytes are never logged.
func (c *controller) sendDataWith(ctx context.Context, node byte, secret bool, build func() ([]byte, error)) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	cmd, err := build()
	if err == nil && (len(cmd) == 0 || len(cmd) > maxSendData) {
		err = fmt.Errorf("zwave: send to node %d: command of %d bytes (at most %d fit in a frame)", node, len(cmd), maxSendData)
	}
	if err != nil {
		c.unlock()
		return err
	}
	id := c.nextCallbackID()
	cb := c.expect(1, isCallback(fnSendData, id))
	data := append([]byte{node, byte(len(cmd))}, cmd...)
	data = append(data, txOptions, id)
	res, err := c.callFrame(ctx, frame{Type: typeRequest, Func: fnSendData, Data: data, secret: secret})
	if err == nil && (len(res.Data) < 1 || res.Data[0] == 0) {
		err = fmt.Errorf("zwave: send to node %d: the stick refused the command (busy?)", node)
	}
	if err != nil {
		c.cancel(cb)
		c.unlock()
		return fmt.Errorf("zwave: send to node %d: %w", node, err)
	}
	f, err := c.wait(ctx, cb, sendDataCallbackMax, fmt.Sprintf("transmit status of node %d", node))
	if err != nil && ctx.Err() != nil {
		// The caller gave up but the stick is still transmitting: keep the
		// bus until it reports, so the next request does not find it busy.
		c.bg.Add(1)
		go c.finishSendData(cb, node)
		return err
	}
	c.cancel(cb)
	c.unlock()
	if err != nil {
		return err
	}
	return transmitResult(node, f)
}

// finishSendData waits for the transmit status of a SendData whose caller
// gave up, then frees the bus. It ends by the callback timeout at the
// latest, or when the link goes down.
func (c *controller) finishSendData(cb *waiter, node byte) {
	defer c.bg.Done()
	defer c.unlock()
	defer c.cancel(cb)
	f, err := c.wait(context.Background(), cb, sendDataCallbackMax, fmt.Sprintf("transmit status of node %d", node))
	if err == nil {
		err = transmitResult(node, f)
	}
	if err != nil && c.onNodeFailed != nil && errors.Is(err, errNoAck) {
		c.onNodeFailed(node, err)
	}
}

// transmitResult interprets a SendData callback.
func transmitResult(node byte, f frame) error {
	if len(f.Data) < 2 {
		return fmt.Errorf("zwave: send to node %d: short transmit status % X", node, f.Data)
	}
	switch st := f.Data[1]; st {
	case 0x00:
		return nil
	case 0x01, 0x05:
		return fmt.Errorf("zwave: send to node %d: %w (%s)", node, errNoAck, txStatusText[st])
	default:
		text, ok := txStatusText[st]
		if !ok {
			text = fmt.Sprintf("status 0x%02X", st)
		}
		return fmt.Errorf("zwave: send to node %d: %w (%s)", node, errNoAck, text)
	}
}
