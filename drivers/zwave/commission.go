package zwave

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Commissioning: what a node says about itself (the interview), its
// configuration parameters, its association groups, its wake-up interval,
// and the removal of a node that is gone for good.

const (
	ccZWavePlus       = 0x5E
	ccConfiguration   = 0x70
	ccManufacturer    = 0x72
	ccVersion         = 0x86
	configSet         = 0x04
	configGet         = 0x05
	configReport      = 0x06
	assocSet          = 0x01
	assocGet          = 0x02
	assocReport       = 0x03
	assocRemove       = 0x04
	assocGroupingsGet = 0x05
	assocGroupingsRep = 0x06
	maxAssocGroups    = 32 // groups listed by "associations"
	maxAssocNodes     = 40 // node ids in one Association Set
)

// Interview is what a node said about itself.
type Interview struct {
	ManufacturerID string     `json:"manufacturer_id,omitempty" doc:"Manufacturer Specific: the manufacturer, e.g. 0x0086"`
	ProductType    string     `json:"product_type,omitempty"`
	ProductID      string     `json:"product_id,omitempty"`
	Library        string     `json:"library,omitempty" doc:"Version: the Z-Wave library type"`
	Protocol       string     `json:"protocol,omitempty" doc:"Version: the Z-Wave protocol version"`
	Firmware       string     `json:"firmware,omitempty" doc:"Version: the application firmware version"`
	Hardware       *int       `json:"hardware,omitempty"`
	ZWavePlus      *ZWavePlus `json:"zwave_plus,omitempty"`
	At             time.Time  `json:"at"`
	Errors         []string   `json:"errors,omitempty" doc:"questions the node did not answer"`
}

// ZWavePlus is a node's Z-Wave Plus Info Report.
type ZWavePlus struct {
	Version       int    `json:"version"`
	RoleType      string `json:"role_type"`
	NodeType      string `json:"node_type"`
	InstallerIcon string `json:"installer_icon"`
	UserIcon      string `json:"user_icon"`
}

var libraryTypes = map[byte]string{
	1: "static_controller", 2: "controller", 3: "enhanced_slave", 4: "slave", 5: "installer",
	6: "routing_slave", 7: "bridge_controller", 8: "device_under_test", 10: "av_remote", 11: "av_device",
}

var roleTypes = map[byte]string{
	0: "central_static_controller", 1: "sub_static_controller", 2: "portable_controller",
	3: "portable_reporting_controller", 4: "portable_slave", 5: "always_on_slave",
	6: "sleeping_reporting_slave", 7: "sleeping_listening_slave", 8: "network_aware_slave",
}

func named(m map[byte]string, b byte) string {
	if s, ok := m[b]; ok {
		return s
	}
	return fmt.Sprintf("0x%02X", b)
}

// parseManufacturer decodes a Manufacturer Specific Report.
func parseManufacturer(cmd []byte, iv *Interview) error {
	if len(cmd) < 8 {
		return fmt.Errorf("manufacturer specific report % X: %w", cmd, errShort)
	}
	iv.ManufacturerID = fmt.Sprintf("0x%04X", binary.BigEndian.Uint16(cmd[2:]))
	iv.ProductType = fmt.Sprintf("0x%04X", binary.BigEndian.Uint16(cmd[4:]))
	iv.ProductID = fmt.Sprintf("0x%04X", binary.BigEndian.Uint16(cmd[6:]))
	return nil
}

// parseVersion decodes a Version Report (v1: library, protocol, firmware;
// v2+: hardware).
func parseVersion(cmd []byte, iv *Interview) error {
	if len(cmd) < 7 {
		return fmt.Errorf("version report % X: %w", cmd, errShort)
	}
	iv.Library = named(libraryTypes, cmd[2])
	iv.Protocol = fmt.Sprintf("%d.%d", cmd[3], cmd[4])
	iv.Firmware = fmt.Sprintf("%d.%d", cmd[5], cmd[6])
	if len(cmd) >= 8 {
		hw := int(cmd[7])
		iv.Hardware = &hw
	}
	return nil
}

// parseZWavePlus decodes a Z-Wave Plus Info Report.
func parseZWavePlus(cmd []byte, iv *Interview) error {
	if len(cmd) < 9 {
		return fmt.Errorf("z-wave plus info report % X: %w", cmd, errShort)
	}
	nodeType := "zwave_plus_node"
	if cmd[4] == 2 {
		nodeType = "zwave_plus_for_ip_gateway"
	} else if cmd[4] != 0 {
		nodeType = fmt.Sprintf("0x%02X", cmd[4])
	}
	iv.ZWavePlus = &ZWavePlus{Version: int(cmd[2]), RoleType: named(roleTypes, cmd[3]), NodeType: nodeType,
		InstallerIcon: fmt.Sprintf("0x%04X", binary.BigEndian.Uint16(cmd[5:])), UserIcon: fmt.Sprintf("0x%04X", binary.BigEndian.Uint16(cmd[7:]))}
	return nil
}

// interview asks a node about itself (the command classes it supports of
// Manufacturer Specific, Version and Z-Wave Plus Info) and stores it.
func (c *Connector) interview(ctx context.Context, ctl *controller, node byte) (*Interview, error) {
	iv := &Interview{At: time.Now().UTC()}
	asked := 0
	for _, q := range []struct {
		cc, get, rep byte
		what         string
		parse        func([]byte, *Interview) error
	}{
		{ccManufacturer, 0x04, 0x05, "manufacturer", parseManufacturer},
		{ccVersion, 0x11, 0x12, "version", parseVersion},
		{ccZWavePlus, 0x01, 0x02, "z-wave plus info", parseZWavePlus},
	} {
		if !c.supports(node, q.cc) {
			continue
		}
		asked++
		m, err := c.request(ctx, ctl, node, []byte{q.cc, q.get}, sendOpts{}, func(m rxMsg) bool { return m.is(q.cc, q.rep) },
			c.set.ReportTimeout, fmt.Sprintf("%s of node %d", q.what, node))
		if err == nil {
			err = q.parse(m.cmd, iv)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errLinkDown) {
				return nil, err
			}
			iv.Errors = append(iv.Errors, err.Error())
		}
	}
	if asked == 0 {
		return nil, fmt.Errorf("zwave: interview of node %d: it lists none of Manufacturer Specific, Version and Z-Wave Plus Info (see zwave.nodes for its command classes)", node)
	}
	if err := c.store.update(node, func(r *nodeRecord) { r.Interview = iv }); err != nil {
		return iv, err
	}
	return iv, nil
}

// ConfigValue is a configuration parameter's value as a node reports it.
type ConfigValue struct {
	NodeID    int   `json:"node_id"`
	Parameter int   `json:"parameter"`
	Size      int   `json:"size" doc:"bytes: 1, 2 or 4"`
	Value     int64 `json:"value" doc:"the value read from the node (after a set: read back)"`
}

// parseConfigReport decodes a Configuration Report: parameter, size and
// the signed big-endian value.
func parseConfigReport(cmd []byte) (param, size int, v int64, err error) {
	if len(cmd) < 5 {
		return 0, 0, 0, fmt.Errorf("configuration report % X: %w", cmd, errShort)
	}
	param, size = int(cmd[2]), int(cmd[3]&0x07)
	if size != 1 && size != 2 && size != 4 {
		return 0, 0, 0, fmt.Errorf("configuration report: value size %d (want 1, 2 or 4)", size)
	}
	if len(cmd) < 4+size {
		return 0, 0, 0, fmt.Errorf("configuration report: value of %d bytes, %d present: %w", size, len(cmd)-4, errShort)
	}
	for _, b := range cmd[4 : 4+size] {
		v = v<<8 | int64(b)
	}
	shift := uint(64 - 8*size)
	return param, size, v << shift >> shift, nil
}

// encodeConfig writes a value in size bytes: signed, or unsigned when it
// only fits that way (0..255 in one byte).
func encodeConfig(v int64, size int) ([]byte, error) {
	lo, hi := -(int64(1) << (8*size - 1)), int64(1)<<(8*size)-1
	if v < lo || v > hi {
		return nil, fmt.Errorf("value %d does not fit in %d bytes (%d..%d)", v, size, lo, hi)
	}
	out := make([]byte, size)
	for i := size - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out, nil
}

// configGet reads a configuration parameter.
func (c *Connector) configGet(ctx context.Context, ctl *controller, node byte, param int) (ConfigValue, error) {
	m, err := c.request(ctx, ctl, node, []byte{ccConfiguration, configGet, byte(param)}, sendOpts{}, func(m rxMsg) bool {
		return m.is(ccConfiguration, configReport) && len(m.cmd) >= 3 && m.cmd[2] == byte(param)
	}, c.set.ReportTimeout, fmt.Sprintf("configuration parameter %d of node %d", param, node))
	if err != nil {
		return ConfigValue{}, err
	}
	p, size, v, err := parseConfigReport(m.cmd)
	if err != nil {
		return ConfigValue{}, fmt.Errorf("zwave: node %d: %w", node, err)
	}
	return ConfigValue{NodeID: int(node), Parameter: p, Size: size, Value: v}, nil
}

// configSet writes a configuration parameter (supervised when the node
// supports it) and reads it back; size 0 takes the size the node reports.
func (c *Connector) configSet(ctx context.Context, ctl *controller, node byte, param int, v int64, size int) (ConfigValue, error) {
	if size == 0 {
		cur, err := c.configGet(ctx, ctl, node, param)
		if err != nil {
			return ConfigValue{}, fmt.Errorf("%w (give \"size\" to write without reading the parameter first)", err)
		}
		size = cur.Size
	}
	b, err := encodeConfig(v, size)
	if err != nil {
		return ConfigValue{}, fmt.Errorf("zwave: configuration parameter %d of node %d: %w", param, node, err)
	}
	cmd := append([]byte{ccConfiguration, configSet, byte(param), byte(size)}, b...)
	if err := c.setCmd(ctx, ctl, node, cmd, sendOpts{}); err != nil {
		return ConfigValue{}, fmt.Errorf("zwave: set configuration parameter %d of node %d: %w", param, node, err)
	}
	return c.configGet(ctx, ctl, node, param)
}

// AssociationGroup is one association group of a node.
type AssociationGroup struct {
	Group    int   `json:"group"`
	MaxNodes int   `json:"max_nodes"`
	Nodes    []int `json:"nodes"`
}

// associationGroup reads one group (following reports included).
func (c *Connector) associationGroup(ctx context.Context, ctl *controller, node byte, group int) (AssociationGroup, error) {
	g := AssociationGroup{Group: group, Nodes: []int{}}
	unlock, err := c.lockNode(ctx, node)
	if err != nil {
		return g, err
	}
	defer unlock()
	w := c.expectN(8, true, func(m rxMsg) bool {
		return m.node == node && m.is(ccAssociation, assocReport) && len(m.cmd) >= 5 && m.cmd[2] == byte(group)
	})
	defer c.unexpect(w)
	if err := c.sendLocked(ctx, ctl, node, []byte{ccAssociation, assocGet, byte(group)}, sendOpts{}); err != nil {
		return g, err
	}
	what := fmt.Sprintf("association group %d of node %d", group, node)
	for i := 0; i < 8; i++ {
		m, err := c.waitMsg(ctx, ctl, w, c.set.ReportTimeout, what)
		if err != nil {
			return g, err
		}
		g.MaxNodes = int(m.cmd[3])
		for _, id := range m.cmd[5:] {
			if id == 0x00 {
				break // a Multi Channel association marker: endpoints follow
			}
			g.Nodes = append(g.Nodes, int(id))
		}
		if m.cmd[4] == 0 { // reports to follow
			return g, nil
		}
	}
	return g, fmt.Errorf("zwave: %s: more than 8 reports", what)
}

// associations lists a node's association groups.
func (c *Connector) associations(ctx context.Context, ctl *controller, node byte) ([]AssociationGroup, error) {
	m, err := c.request(ctx, ctl, node, []byte{ccAssociation, assocGroupingsGet}, sendOpts{}, func(m rxMsg) bool {
		return m.is(ccAssociation, assocGroupingsRep) && len(m.cmd) >= 3
	}, c.set.ReportTimeout, fmt.Sprintf("association groups of node %d", node))
	if err != nil {
		return nil, err
	}
	n := min(int(m.cmd[2]), maxAssocGroups)
	out := []AssociationGroup{}
	for g := 1; g <= n; g++ {
		ag, err := c.associationGroup(ctx, ctl, node, g)
		if err != nil {
			return out, err
		}
		out = append(out, ag)
	}
	return out, nil
}

// associate adds and removes node ids of a group and reads it back.
func (c *Connector) associate(ctx context.Context, ctl *controller, node byte, group int, add, remove []int) (AssociationGroup, error) {
	ids := func(xs []int) ([]byte, error) {
		if len(xs) > maxAssocNodes {
			return nil, fmt.Errorf("at most %d node ids at once", maxAssocNodes)
		}
		out := make([]byte, 0, len(xs))
		for _, x := range xs {
			if x < 1 || x > 232 {
				return nil, fmt.Errorf("%d is not a node id (1..232)", x)
			}
			out = append(out, byte(x))
		}
		return out, nil
	}
	if len(remove) > 0 {
		b, err := ids(remove)
		if err != nil {
			return AssociationGroup{}, fmt.Errorf("remove: %w", err)
		}
		if err := c.setCmd(ctx, ctl, node, append([]byte{ccAssociation, assocRemove, byte(group)}, b...), sendOpts{}); err != nil {
			return AssociationGroup{}, err
		}
	}
	if len(add) > 0 {
		b, err := ids(add)
		if err != nil {
			return AssociationGroup{}, fmt.Errorf("add: %w", err)
		}
		if err := c.setCmd(ctx, ctl, node, append([]byte{ccAssociation, assocSet, byte(group)}, b...), sendOpts{}); err != nil {
			return AssociationGroup{}, err
		}
	}
	return c.associationGroup(ctx, ctl, node, group)
}

// setWakeUpInterval sets a node's wake-up interval (to wake up our stick)
// and reads it back.
func (c *Connector) setWakeUpInterval(ctx context.Context, ctl *controller, node byte, secs int) error {
	own, _, _, _ := ctl.snapshot()
	cmd := []byte{ccWakeUp, wakeUpIntervalSet, byte(secs >> 16), byte(secs >> 8), byte(secs), own}
	if err := c.setCmd(ctx, ctl, node, cmd, sendOpts{}); err != nil {
		return err
	}
	return c.askWakeUpInterval(ctx, ctl, node)
}

// Serial API RemoveFailedNodeId: the stick checks that the node does not
// answer and takes it off its list.
const (
	fnRemoveFailed      = 0x61
	failedRemoved       = 0x01
	failedNotRemoved    = 0x02
	failedNodeOK        = 0x00
	removeFailedTimeout = 60 * time.Second
)

var errNodeAnswers = errors.New("the node answers, so the stick keeps it: exclude it with zwave.exclude instead")

// removeFailed asks the stick to remove a node that no longer answers.
func (c *controller) removeFailed(ctx context.Context, node byte) error {
	if !c.supports(fnRemoveFailed) {
		return fmt.Errorf("zwave: remove failed node %d: %w", node, errUnsupported)
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	id := c.nextCallbackID()
	cb := c.expect(1, isCallback(fnRemoveFailed, id))
	defer c.cancel(cb)
	res, err := c.call(ctx, fnRemoveFailed, node, id)
	if err != nil {
		return fmt.Errorf("zwave: remove failed node %d: %w", node, err)
	}
	if len(res.Data) < 1 {
		return fmt.Errorf("zwave: remove failed node %d: empty answer", node)
	}
	if rv := res.Data[0]; rv != 0 {
		why := []string{}
		for bit, text := range map[byte]string{0x02: "this stick is not the primary controller", 0x08: "the node is not on the stick's failed list (it may answer)", 0x10: "the stick is busy removing another node", 0x20: "the stick could not start"} {
			if rv&bit != 0 {
				why = append(why, text)
			}
		}
		return fmt.Errorf("zwave: remove failed node %d: refused (0x%02X: %v)", node, rv, why)
	}
	f, err := c.wait(ctx, cb, removeFailedTimeout, fmt.Sprintf("removal of failed node %d", node))
	if err != nil {
		return err
	}
	switch status(f) {
	case failedRemoved:
		c.removeKnownNode(node)
		return nil
	case failedNodeOK:
		return fmt.Errorf("zwave: remove failed node %d: %w", node, errNodeAnswers)
	default:
		return fmt.Errorf("zwave: remove failed node %d: the stick could not remove it (status %d)", node, status(f))
	}
}
