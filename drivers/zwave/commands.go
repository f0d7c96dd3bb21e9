package zwave

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/strict"
)

// joinParams are the parameters of "include" and "exclude".
type joinParams struct {
	// Timeout is how long the stick stays in inclusion/exclusion mode
	// waiting for a node ("60s" by default).
	Timeout time.Duration `json:"timeout" doc:"how long the stick waits for a node (default 60s, at most 10m)"`
	// Security is what the new node gets (include only).
	Security string `json:"security" doc:"include: auto (default: S2 if the node supports it, else S0, else none), s2, s0 or none"`
	// PIN is the first five digits of the node's DSK (include only).
	PIN string `json:"pin" doc:"include: the node's PIN, the 5 underlined digits of the DSK on its label; needed for S2 Authenticated and Access Control"`
	// Downgrade allows granting less than the node asks for.
	Downgrade bool `json:"downgrade" doc:"include: without a PIN, grant S2 Unauthenticated only; without S2, accept S0 (or no security)"`
}

// policy checks the security parameters.
func (p joinParams) policy() (includePolicy, error) {
	pol := includePolicy{security: p.Security, pin: -1, downgrade: p.Downgrade}
	switch p.Security {
	case "":
		pol.security = "auto"
	case "auto", "s2", "s0", "none":
	default:
		return pol, fmt.Errorf("security: %q is not one of auto, s2, s0, none", p.Security)
	}
	if p.PIN != "" {
		n, err := strconv.Atoi(p.PIN)
		if err != nil || len(p.PIN) != 5 || n < 0 || n > 65535 {
			return pol, errors.New("pin: give the 5 digits (00000..65535) underlined on the node's DSK label")
		}
		pol.pin = n
	}
	return pol, nil
}

// JoinResult is the answer of "include" and "exclude".
type JoinResult struct {
	// NodeID is the node that joined or left; 0 when none did in time.
	NodeID         int        `json:"node_id"`
	Status         string     `json:"status"`
	CommandClasses []string   `json:"command_classes,omitempty"`
	Security       []string   `json:"security,omitempty" doc:"the security classes the node was granted, highest first"`
	DSK            string     `json:"dsk,omitempty" doc:"the node's S2 DSK (compare it with its label)"`
	Interview      *Interview `json:"interview,omitempty"`
}

// NodeStatus is one entry of "nodes".
type NodeStatus struct {
	NodeID          int        `json:"node_id"`
	Device          string     `json:"device"`
	Controller      bool       `json:"controller,omitempty"`
	Listening       bool       `json:"listening"`
	Sleeping        bool       `json:"sleeping,omitempty" doc:"a battery node that listens only after it wakes up"`
	Awake           bool       `json:"awake,omitempty" doc:"a sleeping node between its wake-up notification and osgate's no-more-information"`
	LastWakeUp      string     `json:"last_wake_up,omitempty"`
	WakeUpInterval  string     `json:"wake_up_interval,omitempty"`
	Pending         []string   `json:"pending,omitempty" doc:"commands waiting for the node to wake up"`
	Dead            bool       `json:"dead"`
	GenericClass    string     `json:"generic_class"`
	CommandClasses  []string   `json:"command_classes,omitempty"`
	Security        string     `json:"security,omitempty" doc:"the node's highest security class; none for a node included without security"`
	SecurityClasses []string   `json:"security_classes,omitempty"`
	SecureCCs       []string   `json:"secure_command_classes,omitempty"`
	SecurityError   string     `json:"security_error,omitempty"`
	DSK             string     `json:"dsk,omitempty"`
	Name            string     `json:"name,omitempty" doc:"the name of its SmartStart provisioning entry"`
	Location        string     `json:"location,omitempty"`
	SecureFailures  int        `json:"secure_frames_dropped,omitempty" doc:"secure frames from the node that could not be used since start"`
	Interview       *Interview `json:"interview,omitempty"`
	Error           string     `json:"error,omitempty"`
}

// nodeParam names a node.
type nodeParam struct {
	Node int `json:"node" strict:"required" doc:"the node id (zwave.nodes lists them)"`
}

type configGetParams struct {
	Node      int `json:"node" strict:"required" doc:"the node id"`
	Parameter int `json:"parameter" strict:"required" doc:"the parameter number, 1..255 (the device's manual lists them)"`
}

type configSetParams struct {
	Node      int    `json:"node" strict:"required" doc:"the node id"`
	Parameter int    `json:"parameter" strict:"required" doc:"the parameter number, 1..255"`
	Value     *int64 `json:"value" strict:"required" doc:"the value (signed; 0..255 also fits one byte)"`
	Size      int    `json:"size" doc:"bytes: 1, 2 or 4; default: the size the node reports for the parameter"`
}

type associateParams struct {
	Node   int   `json:"node" strict:"required" doc:"the node id"`
	Group  int   `json:"group" strict:"required" doc:"the association group, 1..255 (1 is the Lifeline)"`
	Add    []int `json:"add" doc:"node ids to add to the group"`
	Remove []int `json:"remove" doc:"node ids to remove from the group"`
}

type wakeUpParams struct {
	Node     int           `json:"node" strict:"required" doc:"the node id of a battery node"`
	Interval time.Duration `json:"interval" strict:"required" doc:"how often the node wakes up, e.g. \"1h\" (1s..194d; nodes accept only their own steps: the answer is what the node reports)"`
}

// WakeUpResult is the answer of "wake_up".
type WakeUpResult struct {
	NodeID   int    `json:"node_id"`
	Status   string `json:"status"`
	Interval string `json:"interval,omitempty" doc:"the interval the node reports after the change"`
}

// RemoveResult is the answer of "remove_failed".
type RemoveResult struct {
	NodeID int    `json:"node_id"`
	Status string `json:"status"`
}

// Commands offers the connector's commands over RPC and the CLI.
func (c *Connector) Commands() map[string]core.Command {
	return map[string]core.Command{
		"include": {
			Help:   `Start inclusion: press the button of the new node within the timeout. Params: {"timeout": "60s", "security": "auto"|"s2"|"s0"|"none", "pin": "12345", "downgrade": false}. S2 Authenticated and Access Control need the node's PIN.`,
			Params: joinParams{}, Result: JoinResult{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.join(ctx, p, true) },
		},
		"exclude": {
			Help:   `Start exclusion: press the button of the node to remove within the timeout. Params: {"timeout": "60s"}.`,
			Params: joinParams{}, Result: JoinResult{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.join(ctx, p, false) },
		},
		"nodes": {
			Help:   "List the stick's nodes: command classes, security, interview, sleeping nodes and what waits for them.",
			Result: []NodeStatus{},
			Run:    func(ctx context.Context, _ json.RawMessage) (any, error) { return c.nodes(ctx) },
		},
		"keys": {
			Help:   "Export the network keys (S0 and S2) to move the network to another controller. Keep the answer secret.",
			Result: KeysExport{}, Scope: scope.Admin,
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.exportKeys(p) },
		},
		"interview": {
			Help:   `Ask a node about itself (manufacturer, product, firmware, Z-Wave Plus role) and keep the answer. Params: {"node": 5}.`,
			Params: nodeParam{}, Result: Interview{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) {
				return c.onNode(ctx, p, "interview", func(ctx context.Context, ctl *controller, node byte) (any, error) {
					return c.interview(ctx, ctl, node)
				})
			},
		},
		"config_get": {
			Help:   `Read a configuration parameter of a node. Params: {"node": 5, "parameter": 3}.`,
			Params: configGetParams{}, Result: ConfigValue{},
			Run: func(ctx context.Context, raw json.RawMessage) (any, error) {
				var p configGetParams
				if err := decodeParams(raw, &p); err != nil {
					return nil, err
				}
				if p.Parameter < 0 || p.Parameter > 255 {
					return nil, fmt.Errorf("parameter: %d is not 0..255", p.Parameter)
				}
				return c.onNodeID(ctx, p.Node, fmt.Sprintf("get configuration parameter %d", p.Parameter), func(ctx context.Context, ctl *controller, node byte) (any, error) {
					return c.configGet(ctx, ctl, node, p.Parameter)
				})
			},
		},
		"config_set": {
			Help:   `Set a configuration parameter of a node and read it back. Params: {"node": 5, "parameter": 3, "value": 10, "size": 1}.`,
			Params: configSetParams{}, Result: ConfigValue{},
			Run: func(ctx context.Context, raw json.RawMessage) (any, error) {
				var p configSetParams
				if err := decodeParams(raw, &p); err != nil {
					return nil, err
				}
				if p.Parameter < 0 || p.Parameter > 255 {
					return nil, fmt.Errorf("parameter: %d is not 0..255", p.Parameter)
				}
				if p.Size != 0 && p.Size != 1 && p.Size != 2 && p.Size != 4 {
					return nil, fmt.Errorf("size: %d is not 1, 2 or 4", p.Size)
				}
				if p.Size != 0 {
					if _, err := encodeConfig(*p.Value, p.Size); err != nil {
						return nil, fmt.Errorf("value: %w", err)
					}
				}
				return c.onNodeID(ctx, p.Node, fmt.Sprintf("set configuration parameter %d", p.Parameter), func(ctx context.Context, ctl *controller, node byte) (any, error) {
					return c.configSet(ctx, ctl, node, p.Parameter, *p.Value, p.Size)
				})
			},
		},
		"associations": {
			Help:   `List a node's association groups and the nodes in each. Params: {"node": 5}.`,
			Params: nodeParam{}, Result: []AssociationGroup{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) {
				return c.onNode(ctx, p, "list associations", func(ctx context.Context, ctl *controller, node byte) (any, error) {
					return c.associations(ctx, ctl, node)
				})
			},
		},
		"associate": {
			Help:   `Add node ids to (or remove them from) a node's association group and read the group back. Params: {"node": 5, "group": 2, "add": [1], "remove": [7]}.`,
			Params: associateParams{}, Result: AssociationGroup{},
			Run: func(ctx context.Context, raw json.RawMessage) (any, error) {
				var p associateParams
				if err := decodeParams(raw, &p); err != nil {
					return nil, err
				}
				if p.Group < 1 || p.Group > 255 {
					return nil, fmt.Errorf("group: %d is not 1..255", p.Group)
				}
				return c.onNodeID(ctx, p.Node, fmt.Sprintf("associate group %d", p.Group), func(ctx context.Context, ctl *controller, node byte) (any, error) {
					return c.associate(ctx, ctl, node, p.Group, p.Add, p.Remove)
				})
			},
		},
		"wake_up": {
			Help:   `Set how often a battery node wakes up; the change waits for its next wake-up. Params: {"node": 9, "interval": "1h"}.`,
			Params: wakeUpParams{}, Result: WakeUpResult{},
			Run: func(ctx context.Context, raw json.RawMessage) (any, error) { return c.wakeUpCmd(ctx, raw) },
		},
		"provision_add": {
			Help:   `Add a node to the SmartStart provisioning list; it joins with S2 on its own once powered. Params: {"dsk": "12345-...", "security": ["s2_access_control"], "name": "front door", "location": "hall"}; dsk may be the scanned QR code.`,
			Params: provisionAddParams{}, Result: ProvisionEntry{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.provisionAdd(ctx, p) },
		},
		"provision_remove": {
			Help:   `Remove a node from the SmartStart provisioning list (an included node stays included). Params: {"dsk": "*****-12345-..."}.`,
			Params: provisionRemoveParams{}, Result: ProvisionEntry{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.provisionRemove(ctx, p) },
		},
		"provision_list": {
			Help:   `List the SmartStart provisioning list (DSKs without their PIN) and whether the stick listens for SmartStart nodes.`,
			Result: ProvisionList{},
			Run:    func(ctx context.Context, p json.RawMessage) (any, error) { return c.provisionList(p) },
		},
		"remove_failed": {
			Help:   `Remove a node that is gone for good (broken, thrown away) from the stick's list; the stick refuses while the node answers. Params: {"node": 7}.`,
			Params: nodeParam{}, Result: RemoveResult{},
			Run: func(ctx context.Context, raw json.RawMessage) (any, error) { return c.removeFailedCmd(ctx, raw) },
		},
	}
}

func decodeParams(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	return strict.Decode(raw, v)
}

// onNode runs f on the node named by {"node": N}.
func (c *Connector) onNode(ctx context.Context, raw json.RawMessage, what string, f func(ctx context.Context, ctl *controller, node byte) (any, error)) (any, error) {
	var p nodeParam
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	return c.onNodeID(ctx, p.Node, what, f)
}

// onNodeID checks the node and runs f: at once for a node that listens,
// at its next wake-up for a sleeping one (within ctx; after that the
// command stays queued).
func (c *Connector) onNodeID(ctx context.Context, id int, what string, f func(ctx context.Context, ctl *controller, node byte) (any, error)) (any, error) {
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	node, err := c.knownNode(ctl, id)
	if err != nil {
		return nil, err
	}
	if !c.sleeping(ctl, node) {
		return f(ctx, ctl, node)
	}
	var out any
	err = c.queueAndWait(ctx, ctl, node, what, func(ctx context.Context, ctl *controller) error {
		var err error
		out, err = f(ctx, ctl, node)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("zwave: %s: %w", what, err)
	}
	return out, nil
}

// knownNode checks that id is a node of the stick's network.
func (c *Connector) knownNode(ctl *controller, id int) (byte, error) {
	own, _, nodes, _ := ctl.snapshot()
	if id < 1 || id > 232 {
		return 0, fmt.Errorf("node: %d is not a node id (1..232)", id)
	}
	if byte(id) == own {
		return 0, fmt.Errorf("node: %d is the stick itself", id)
	}
	for _, n := range nodes {
		if n == byte(id) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("node: %d is not in the stick's network (zwave.nodes lists them)", id)
}

func (c *Connector) exportKeys(raw json.RawMessage) (any, error) {
	if err := decodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	k, err := c.store.loadKeys(false)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, errors.New("zwave: no network keys yet: they are made at the first secure inclusion")
	}
	return k.export(), nil
}

func (c *Connector) wakeUpCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var p wakeUpParams
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	secs := int(p.Interval / time.Second)
	if p.Interval%time.Second != 0 || secs < 1 || secs > 0xFFFFFF {
		return nil, fmt.Errorf("interval: %s is not a whole number of seconds between 1s and %s", p.Interval, time.Duration(0xFFFFFF)*time.Second)
	}
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	node, err := c.knownNode(ctl, p.Node)
	if err != nil {
		return nil, err
	}
	if !c.supports(node, ccWakeUp) && !isSleeper(ctl, node) {
		return nil, fmt.Errorf("node: %d does not support Wake Up (it is not a battery node that sleeps)", node)
	}
	run := func(ctx context.Context, ctl *controller) error { return c.setWakeUpInterval(ctx, ctl, node, secs) }
	res := WakeUpResult{NodeID: int(node), Status: "set"}
	if c.sleeping(ctl, node) {
		err = c.queueAndWait(ctx, ctl, node, "set wake up interval", run)
		if errors.Is(err, errQueued) {
			res.Status = fmt.Sprintf("queued: it is set at the node's next wake-up (%s)", errQueued)
			return res, nil
		}
	} else {
		err = run(ctx, ctl)
	}
	if err != nil {
		return nil, fmt.Errorf("zwave: set the wake-up interval of node %d: %w", node, err)
	}
	res.Interval = (time.Duration(c.store.record(node).WakeUpSeconds) * time.Second).String()
	return res, nil
}

func (c *Connector) removeFailedCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var p nodeParam
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	node, err := c.knownNode(ctl, p.Node)
	if err != nil {
		return nil, err
	}
	if err := ctl.removeFailed(ctx, node); err != nil {
		return nil, err
	}
	if err := c.store.forget(node); err != nil {
		c.log.Warn("zwave: record of a removed node not deleted", "node", node, "err", err)
	}
	c.sec.reset(node)
	c.log.Info("zwave: failed node removed", "node", node)
	return RemoveResult{NodeID: int(node), Status: "removed"}, nil
}

func (c *Connector) join(ctx context.Context, raw json.RawMessage, include bool) (any, error) {
	p := joinParams{Timeout: 60 * time.Second}
	if len(raw) > 0 && string(raw) != "null" {
		if err := strict.Decode(raw, &p); err != nil {
			return nil, err
		}
	}
	if p.Timeout <= 0 || p.Timeout > 10*time.Minute {
		return nil, fmt.Errorf("timeout: %s is not between 1s and 10m", p.Timeout)
	}
	pol, err := p.policy()
	if err != nil {
		return nil, err
	}
	if !include && (p.Security != "" || p.PIN != "" || p.Downgrade) {
		return nil, errors.New("security, pin and downgrade are parameters of include, not exclude")
	}
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	if include && pol.security != "none" {
		// The keys exist before a node joins: a failure to make them must
		// not leave a node half included.
		if err := c.keys(); err != nil {
			return nil, err
		}
	}
	release, err := c.lockJoin(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	var res joinResult
	if include {
		res, err = ctl.addNode(ctx, p.Timeout)
	} else {
		res, err = ctl.removeNode(ctx, p.Timeout)
	}
	c.resumeSmartStart(ctl) // the stick left SmartStart listening
	if err != nil {
		return nil, err
	}
	out := JoinResult{NodeID: int(res.NodeID), CommandClasses: ccList(res.Info.CCs)}
	switch {
	case res.NodeID != 0 && include:
		return c.included(ctx, ctl, res, pol, out)
	case res.NodeID != 0:
		out.Status = "excluded"
		if err := c.store.forget(res.NodeID); err != nil {
			c.log.Warn("zwave: record of an excluded node not deleted", "node", res.NodeID, "err", err)
		}
		c.sec.reset(res.NodeID)
	case res.Found:
		out.Status = "node found but it did not finish; retry closer to the stick"
	default:
		out.Status = "no node within " + p.Timeout.String()
	}
	return out, nil
}

// included secures a node that just joined, sets its lifeline and asks it
// about itself.
func (c *Connector) included(ctx context.Context, ctl *controller, res joinResult, pol includePolicy, out JoinResult) (any, error) {
	node := res.NodeID
	out.Status = "included"
	core.Progress(ctx, JoinProgress{Step: "securing", Node: int(node), Text: fmt.Sprintf("node %d joined: securing and interviewing it", node)})
	c.alive(node)
	if err := ctl.readProtocolInfo(ctx, node); err != nil {
		c.log.Warn("zwave: protocol info of a new node not read", "node", node, "err", err)
	}
	if err := c.store.forget(node); err != nil { // an earlier node of this id
		return nil, err
	}
	sr, err := c.secure(ctx, ctl, node, res.Info.CCs, pol)
	if sr.dsk != "" {
		out.DSK = sr.dsk
	}
	if err != nil {
		msg := err.Error()
		if uerr := c.store.update(node, func(r *nodeRecord) { r.SecurityError, r.DSK = msg, sr.dsk }); uerr != nil {
			c.log.Warn("zwave: node record not saved", "node", node, "err", uerr)
		}
		c.log.Warn("zwave: secure inclusion failed; the node has no keys", "node", node, "err", err)
		return nil, fmt.Errorf("zwave: include: node %d joined the network without keys (%w); osgate does not talk to it securely: exclude it (zwave.exclude and its button) and include it again", node, err)
	}
	var notes []string
	if len(sr.classes) > 0 {
		names := make([]string, len(sr.classes))
		for i, cl := range sr.classes {
			names[i] = cl.String()
		}
		out.Security = names
		if err := c.store.update(node, func(r *nodeRecord) { r.Security, r.DSK = names, sr.dsk }); err != nil {
			return nil, err
		}
		c.log.Info("zwave: node included securely", "node", node, "security", strings.Join(names, ","), "dsk", sr.dsk)
		if ccs, err := c.secureCommands(ctx, ctl, node, sr.classes[0]); err != nil {
			notes = append(notes, "secure command classes not read: "+err.Error())
		} else if err := c.store.update(node, func(r *nodeRecord) { r.SecureCCs = ccs }); err != nil {
			return nil, err
		}
	} else if err := c.store.update(node, func(r *nodeRecord) {}); err != nil {
		return nil, err
	}
	if err := c.lifeline(ctx, ctl, node); err != nil {
		notes = append(notes, err.Error())
	}
	if c.supports(node, ccManufacturer) || c.supports(node, ccVersion) || c.supports(node, ccZWavePlus) {
		if iv, err := c.interview(ctx, ctl, node); err != nil {
			notes = append(notes, "interview: "+err.Error())
		} else {
			out.Interview = iv
		}
	}
	if len(notes) > 0 {
		out.Status += "; " + strings.Join(notes, "; ")
	}
	return out, nil
}

func (c *Connector) nodes(ctx context.Context) (any, error) {
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	own, _, ids, info := ctl.snapshot()
	out := make([]NodeStatus, 0, len(ids))
	for _, id := range ids {
		ni := info[id]
		st := NodeStatus{NodeID: int(id), Device: deviceName(c.byNode, id), Listening: ni.Listening,
			GenericClass: fmt.Sprintf("0x%02X", ni.Generic)}
		if id == own {
			st.Controller, st.Device, st.Listening = true, "", true
			out = append(out, st)
			continue
		}
		sleeper := !ni.Listening && !ni.FLiRS
		st.Dead = c.isDead(id) && !sleeper
		rec := c.store.record(id)
		st.Security = rec.highest().String()
		for _, cl := range rec.classes() {
			st.SecurityClasses = append(st.SecurityClasses, cl.String())
		}
		for _, cc := range rec.SecureCCs {
			st.SecureCCs = append(st.SecureCCs, ccList([]byte{byte(cc)})...)
		}
		st.SecurityError, st.DSK, st.Interview = rec.SecurityError, hidePIN(rec.DSK), rec.Interview
		st.Name, st.Location = rec.Name, rec.Location
		if rec.WakeUpSeconds > 0 {
			st.WakeUpInterval = (time.Duration(rec.WakeUpSeconds) * time.Second).String()
		}
		if sleeper {
			st.Sleeping = true
			var last time.Time
			st.Awake, last, st.Pending = c.pendingOf(id)
			if !last.IsZero() {
				st.LastWakeUp = last.UTC().Format(time.RFC3339)
			}
		}
		c.hmu.Lock()
		st.SecureFailures = c.nodeHealth(id).secFailures
		c.hmu.Unlock()
		ccs := ni.CCs
		if ccs == nil && ni.Listening && c.deadErr(id) == nil {
			ccs, err = ctl.requestNodeInfo(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				st.Error = err.Error()
			}
		}
		st.CommandClasses = ccList(ccs)
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

func ccList(ccs []byte) []string {
	var out []string
	for _, cc := range ccs {
		if n, ok := ccNames[cc]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("0x%02X", cc))
		}
	}
	return out
}

// lifeline points a new node's association group 1 (Lifeline) at the stick,
// so that it sends its reports without being polled.
func (c *Connector) lifeline(ctx context.Context, ctl *controller, node byte) error {
	if !c.supports(node, ccAssociation) {
		return nil
	}
	own, _, _, _ := ctl.snapshot()
	if err := c.send(ctx, ctl, node, []byte{ccAssociation, assocSet, 0x01, own}, sendOpts{}); err != nil {
		return fmt.Errorf("lifeline association not set (the node will only be polled): %w", err)
	}
	c.log.Info("zwave: lifeline association set", "node", node)
	return nil
}
