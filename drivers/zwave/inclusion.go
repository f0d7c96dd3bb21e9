package zwave

import (
	"context"
	"fmt"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// Inclusion and exclusion (AddNodeToNetwork, RemoveNodeFromNetwork): the
// stick's part, which adds the node to the network; its keys follow
// (bootstrap.go).
const (
	modeAny       = 0x01
	modeStop      = 0x05
	modeHighPower = 0x80
	modeNetwork   = 0x40 // network-wide inclusion/exclusion

	statusReady      = 0x01
	statusNodeFound  = 0x02
	statusAddingNode = 0x03 // adding/removing a slave
	statusAddingCtl  = 0x04 // adding/removing a controller
	statusProtoDone  = 0x05 // add only
	statusDone       = 0x06
	statusFailed     = 0x07
)

// JoinProgress is where an inclusion or exclusion is, for a caller that
// shows it (core.Progress).
type JoinProgress struct {
	// Step is waiting (for a button press), found, joining, securing or
	// interviewing.
	Step string `json:"step"`
	Node int    `json:"node,omitempty"`
	Text string `json:"text"`
}

// joinResult is what an inclusion or exclusion did.
type joinResult struct {
	NodeID byte
	Info   nodeInfo
	Found  bool
}

// addNode puts the stick into inclusion mode until a node joins or d
// passes, then stops inclusion.
func (c *controller) addNode(ctx context.Context, d time.Duration) (joinResult, error) {
	return c.join(ctx, fnAddNode, "inclusion", d)
}

// removeNode puts the stick into exclusion mode until a node leaves or d
// passes, then stops exclusion.
func (c *controller) removeNode(ctx context.Context, d time.Duration) (joinResult, error) {
	return c.join(ctx, fnRemoveNode, "exclusion", d)
}

// addNodeDSK adds the SmartStart node that announced nwi (its DSK's home
// ids) until it joined or d passes.
func (c *controller) addNodeDSK(ctx context.Context, nwi, auth [4]byte, d time.Duration) (joinResult, error) {
	return c.join(ctx, fnAddNode, "SmartStart inclusion", d, append(append([]byte{modeSmartStartDSK | modeHighPower | modeNetwork}, nwi[:]...), auth[:]...)...)
}

// join runs an inclusion or exclusion; start is the mode byte and what
// follows the callback id (default: any node, network-wide).
func (c *controller) join(ctx context.Context, fn byte, what string, d time.Duration, start ...byte) (joinResult, error) {
	if !c.supports(fn) {
		return joinResult{}, fmt.Errorf("zwave: %s: %w", what, errUnsupported)
	}
	var res joinResult
	id := c.nextCallbackID()
	w := c.expect(8, isCallback(fn, id))
	defer c.cancel(w)
	if len(start) == 0 {
		start = []byte{modeAny | modeHighPower | modeNetwork}
	}
	if err := c.lockedSend(ctx, fn, append([]byte{start[0], id}, start[1:]...)...); err != nil {
		return res, fmt.Errorf("zwave: start %s: %w", what, err)
	}
	f, err := c.wait(ctx, w, responseTimeout, "start "+what)
	if err != nil {
		return res, err
	}
	if st := status(f); st != statusReady {
		return res, fmt.Errorf("zwave: start %s: the stick answered status %d instead of ready", what, st)
	}
	c.log.Info("zwave: "+what+" started", "for", d)
	core.Progress(ctx, JoinProgress{Step: "waiting", Text: what + " started: press the node's button within " + d.String()})

	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		var f frame
		select {
		case f = <-w.ch:
		case <-deadline.C:
			c.log.Info("zwave: "+what+" ended without a node", "after", d)
			return res, c.stopJoin(ctx, fn, what, &res)
		case <-ctx.Done():
			// Leave the stick out of inclusion mode even when the caller
			// gave up.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = c.stopJoin(sctx, fn, what, &res)
			return res, fmt.Errorf("zwave: %s: %w", what, ctx.Err())
		case <-c.link.done:
			return res, fmt.Errorf("zwave: %s: %w: %v", what, errLinkDown, c.link.err)
		}
		switch status(f) {
		case statusNodeFound:
			res.Found = true
			c.log.Info("zwave: " + what + ": node found")
			core.Progress(ctx, JoinProgress{Step: "found", Text: "node found"})
		case statusAddingNode, statusAddingCtl:
			res.Found = true
			if len(f.Data) >= 3 {
				res.NodeID = f.Data[2]
			}
			if _, info, err := parseNIF(f.Data[1:]); err == nil {
				res.Info = info
			}
			core.Progress(ctx, JoinProgress{Step: "joining", Node: int(res.NodeID), Text: fmt.Sprintf("node %d is joining", res.NodeID)})
		case statusProtoDone:
			return res, c.stopJoin(ctx, fn, what, &res)
		case statusDone:
			if len(f.Data) >= 3 && f.Data[2] != 0 {
				res.NodeID = f.Data[2]
			}
			c.finishJoin(fn, res)
			// The Serial API asks for a final stop without callback after
			// an exclusion is done.
			if fn == fnRemoveNode {
				_ = c.lockedSend(ctx, fn, modeStop, 0)
			}
			return res, nil
		case statusFailed:
			_ = c.stopJoin(ctx, fn, what, &res)
			return res, fmt.Errorf("zwave: %s failed: the node did not finish joining (move it closer and retry)", what)
		}
	}
}

// stopJoin leaves inclusion/exclusion mode; when a node finished the
// protocol part, the stick answers the stop with done.
func (c *controller) stopJoin(ctx context.Context, fn byte, what string, res *joinResult) error {
	id := c.nextCallbackID()
	w := c.expect(4, isCallback(fn, id))
	defer c.cancel(w)
	if err := c.lockedSend(ctx, fn, modeStop, id); err != nil {
		return fmt.Errorf("zwave: stop %s: %w", what, err)
	}
	f, err := c.wait(ctx, w, 5*time.Second, "stop "+what)
	if err != nil {
		// Some firmwares send nothing after a stop without a pending node.
		c.log.Debug("zwave: no answer to stop "+what, "err", err)
		return nil
	}
	if status(f) == statusDone {
		if len(f.Data) >= 3 && f.Data[2] != 0 {
			res.NodeID = f.Data[2]
		}
		c.finishJoin(fn, *res)
	}
	return nil
}

func (c *controller) finishJoin(fn byte, res joinResult) {
	if res.NodeID == 0 {
		return
	}
	if fn == fnRemoveNode {
		c.removeKnownNode(res.NodeID)
		c.log.Info("zwave: node excluded", "node", res.NodeID)
		return
	}
	c.addKnownNode(res.NodeID)
	c.mu.Lock()
	ni := c.node(res.NodeID)
	ni.Basic, ni.Generic, ni.Specific, ni.CCs = res.Info.Basic, res.Info.Generic, res.Info.Specific, res.Info.CCs
	c.mu.Unlock()
	c.log.Info("zwave: node joined the network", "node", res.NodeID, "command_classes", fmt.Sprintf("% X", res.Info.CCs))
}

// lockedSend sends a request that has no response frame, only callbacks.
func (c *controller) lockedSend(ctx context.Context, fn byte, data ...byte) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	return c.link.send(ctx, frame{Type: typeRequest, Func: fn, Data: data})
}

func status(f frame) byte {
	if len(f.Data) < 2 {
		return 0
	}
	return f.Data[1]
}
