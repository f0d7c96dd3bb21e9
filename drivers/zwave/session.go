package zwave

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// start runs the host's start-up sequence: learn which functions the stick
// implements, soft-reset it when asked and supported, then read the home id,
// our node id, the node list and each node's protocol info.
func (c *controller) start(ctx context.Context, softReset bool) error {
	// Resynchronise: a NAK makes a stick that was half-way through sending
	// a frame to a previous host start over.
	if err := c.link.write([]byte{nak}); err != nil {
		return fmt.Errorf("zwave: write to stick: %w", err)
	}
	if err := c.readCapabilities(ctx); err != nil {
		return err
	}
	if softReset && c.supports(fnSoftReset) {
		if err := c.softReset(ctx); err != nil {
			return err
		}
	}
	if err := c.readIDs(ctx); err != nil {
		return err
	}
	if err := c.readNodes(ctx); err != nil {
		return err
	}
	c.log.Info("zwave: stick ready", "home_id", fmt.Sprintf("0x%08X", c.homeID), "own_node", c.ownID, "nodes", fmt.Sprint(ids(c.nodes)), "version", c.version)
	return nil
}

func (c *controller) readCapabilities(ctx context.Context) error {
	f, err := c.request(ctx, fnGetCapabilities)
	if err != nil {
		return fmt.Errorf("zwave: read Serial API capabilities: %w", err)
	}
	if len(f.Data) < 8+32 {
		return fmt.Errorf("zwave: read Serial API capabilities: %d bytes, want 40", len(f.Data))
	}
	c.mu.Lock()
	copy(c.supported[:], f.Data[8:40])
	c.haveCaps = true
	c.version = fmt.Sprintf("%d.%d manufacturer 0x%04X product 0x%04X/0x%04X", f.Data[0], f.Data[1],
		binary.BigEndian.Uint16(f.Data[2:]), binary.BigEndian.Uint16(f.Data[4:]), binary.BigEndian.Uint16(f.Data[6:]))
	c.mu.Unlock()
	return nil
}

// softReset restarts the stick's firmware. Newer sticks announce the restart
// with SerialAPIStarted; older ones say nothing, so its absence is not an
// error.
func (c *controller) softReset(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	w := c.expect(1, func(f frame) bool { return f.Type == typeRequest && f.Func == fnSerialAPIStarted })
	defer c.cancel(w)
	if err := c.link.send(ctx, frame{Type: typeRequest, Func: fnSoftReset}); err != nil {
		return fmt.Errorf("zwave: soft reset: %w", err)
	}
	if _, err := c.wait(ctx, w, 2*time.Second, "soft reset"); err != nil {
		if ctx.Err() != nil {
			return err
		}
		c.log.Debug("zwave: no SerialAPIStarted after soft reset (older firmware)", "err", err)
	}
	return nil
}

func (c *controller) readIDs(ctx context.Context) error {
	f, err := c.request(ctx, fnGetControllerID)
	if err != nil {
		return fmt.Errorf("zwave: read home id: %w", err)
	}
	if len(f.Data) < 5 {
		return fmt.Errorf("zwave: read home id: %d bytes, want 5", len(f.Data))
	}
	c.mu.Lock()
	c.homeID = binary.BigEndian.Uint32(f.Data)
	c.ownID = f.Data[4]
	c.mu.Unlock()
	return nil
}

func (c *controller) readNodes(ctx context.Context) error {
	f, err := c.request(ctx, fnGetInitData)
	if err != nil {
		return fmt.Errorf("zwave: read node list: %w", err)
	}
	nodes, err := parseInitData(f.Data)
	if err != nil {
		return fmt.Errorf("zwave: read node list: %w", err)
	}
	c.mu.Lock()
	c.nodes = nodes
	c.mu.Unlock()
	for _, n := range nodes {
		if n == c.ownID {
			continue
		}
		if err := c.readProtocolInfo(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// parseInitData returns the node ids of a GetSerialApiInitData response:
// version, capabilities, bitmask length, bitmask, chip type, chip version.
func parseInitData(d []byte) ([]byte, error) {
	if len(d) < 3 {
		return nil, fmt.Errorf("init data of %d bytes", len(d))
	}
	n := int(d[2])
	if len(d) < 3+n {
		return nil, fmt.Errorf("init data: node bitmask of %d bytes, %d present", n, len(d)-3)
	}
	var nodes []byte
	for i := 0; i < n && i < 29; i++ {
		for b := 0; b < 8; b++ {
			if d[3+i]&(1<<b) != 0 {
				nodes = append(nodes, byte(i*8+b+1))
			}
		}
	}
	return nodes, nil
}

func (c *controller) readProtocolInfo(ctx context.Context, node byte) error {
	if !c.supports(fnGetProtocolInfo) {
		return nil
	}
	f, err := c.request(ctx, fnGetProtocolInfo, node)
	if err != nil {
		return fmt.Errorf("zwave: read protocol info of node %d: %w", node, err)
	}
	if len(f.Data) < 6 {
		return fmt.Errorf("zwave: read protocol info of node %d: %d bytes, want 6", node, len(f.Data))
	}
	c.mu.Lock()
	ni := c.node(node)
	ni.Listening = f.Data[0]&0x80 != 0
	ni.FLiRS = f.Data[1]&0x60 != 0
	ni.Basic, ni.Generic, ni.Specific = f.Data[3], f.Data[4], f.Data[5]
	c.mu.Unlock()
	return nil
}

// node returns the info of a node, creating it; c.mu must be held.
func (c *controller) node(id byte) *nodeInfo {
	ni := c.info[id]
	if ni == nil {
		ni = &nodeInfo{}
		c.info[id] = ni
	}
	return ni
}

// Application update status of a node information frame.
const (
	updateNodeInfo       = 0x84
	updateNodeInfoFailed = 0x81
)

// requestNodeInfo asks a node for its node information frame (NIF) and
// records its command classes.
func (c *controller) requestNodeInfo(ctx context.Context, node byte) ([]byte, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	w := c.expect(1, func(f frame) bool {
		if f.Type != typeRequest || f.Func != fnAppUpdate || len(f.Data) < 1 {
			return false
		}
		return f.Data[0] == updateNodeInfoFailed || (f.Data[0] == updateNodeInfo && len(f.Data) >= 2 && f.Data[1] == node)
	})
	defer c.cancel(w)
	res, err := c.call(ctx, fnRequestNodeInfo, node)
	if err != nil {
		return nil, fmt.Errorf("zwave: request node info of node %d: %w", node, err)
	}
	if len(res.Data) < 1 || res.Data[0] == 0 {
		return nil, fmt.Errorf("zwave: request node info of node %d: refused by the stick", node)
	}
	f, err := c.wait(ctx, w, responseTimeout, fmt.Sprintf("node info of node %d", node))
	if err != nil {
		return nil, err
	}
	if f.Data[0] == updateNodeInfoFailed {
		return nil, fmt.Errorf("zwave: request node info of node %d: %w", node, errNoAck)
	}
	return c.recordNIF(f.Data)
}

// recordNIF stores the node information carried by an application update
// (status, node, length, basic, generic, specific, command classes...).
func (c *controller) recordNIF(d []byte) ([]byte, error) {
	id, info, err := parseNIF(d)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	ni := c.node(id)
	ni.Basic, ni.Generic, ni.Specific, ni.CCs = info.Basic, info.Generic, info.Specific, info.CCs
	c.mu.Unlock()
	return info.CCs, nil
}

func parseNIF(d []byte) (byte, nodeInfo, error) {
	if len(d) < 3 {
		return 0, nodeInfo{}, fmt.Errorf("zwave: node info of %d bytes", len(d))
	}
	id, n := d[1], int(d[2])
	if n < 3 || len(d) < 3+n {
		return 0, nodeInfo{}, fmt.Errorf("zwave: node info of node %d: length %d, %d bytes present", id, n, len(d)-3)
	}
	b := d[3 : 3+n]
	var ccs []byte
	for _, cc := range b[3:] {
		if cc == 0xEF { // COMMAND_CLASS_MARK: the rest are controlled, not supported
			break
		}
		ccs = append(ccs, cc)
	}
	return id, nodeInfo{Basic: b[0], Generic: b[1], Specific: b[2], CCs: ccs}, nil
}

// snapshot returns the node list and a copy of each node's info.
func (c *controller) snapshot() (own byte, home uint32, nodes []byte, info map[byte]nodeInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	info = make(map[byte]nodeInfo, len(c.info))
	for id, ni := range c.info {
		info[id] = *ni
	}
	return c.ownID, c.homeID, append([]byte(nil), c.nodes...), info
}

func (c *controller) addKnownNode(id byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n == id {
			return
		}
	}
	c.nodes = append(c.nodes, id)
}

func (c *controller) removeKnownNode(id byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n == id {
			c.nodes = append(c.nodes[:i], c.nodes[i+1:]...)
			break
		}
	}
	delete(c.info, id)
}

// ids turns node ids into ints for logs and messages.
func ids(nodes []byte) []int {
	out := make([]int, len(nodes))
	for i, n := range nodes {
		out[i] = int(n)
	}
	return out
}
