package zwave

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// joinParams are the parameters of "include" and "exclude".
type joinParams struct {
	// Timeout is how long the stick stays in inclusion/exclusion mode
	// waiting for a node ("60s" by default).
	Timeout time.Duration `json:"timeout" doc:"how long the stick waits for a node (default 60s, at most 10m)"`
}

// JoinResult is the answer of "include" and "exclude".
type JoinResult struct {
	// NodeID is the node that joined or left; 0 when none did in time.
	NodeID         int      `json:"node_id"`
	Status         string   `json:"status"`
	CommandClasses []string `json:"command_classes,omitempty"`
}

// NodeStatus is one entry of "nodes".
type NodeStatus struct {
	NodeID         int      `json:"node_id"`
	Device         string   `json:"device"`
	Controller     bool     `json:"controller,omitempty"`
	Listening      bool     `json:"listening"`
	Dead           bool     `json:"dead"`
	GenericClass   string   `json:"generic_class"`
	CommandClasses []string `json:"command_classes,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// Commands offers "include", "exclude" and "nodes".
func (c *Connector) Commands() map[string]core.Command {
	return map[string]core.Command{
		"include": {
			Help:   `Start non-secure inclusion: press the button of the new node within the timeout. Params: {"timeout": "60s"}. S0/S2 security is not supported yet.`,
			Params: joinParams{}, Result: JoinResult{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.join(ctx, p, true) },
		},
		"exclude": {
			Help:   `Start exclusion: press the button of the node to remove within the timeout. Params: {"timeout": "60s"}.`,
			Params: joinParams{}, Result: JoinResult{},
			Run: func(ctx context.Context, p json.RawMessage) (any, error) { return c.join(ctx, p, false) },
		},
		"nodes": {
			Help:   "List the stick's nodes with their command classes (asks each listening node for its node information).",
			Result: []NodeStatus{},
			Run:    func(ctx context.Context, _ json.RawMessage) (any, error) { return c.nodes(ctx) },
		},
	}
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
	ctl, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	var res joinResult
	if include {
		res, err = ctl.addNode(ctx, p.Timeout)
	} else {
		res, err = ctl.removeNode(ctx, p.Timeout)
	}
	if err != nil {
		return nil, err
	}
	out := JoinResult{NodeID: int(res.NodeID), CommandClasses: ccList(res.Info.CCs)}
	switch {
	case res.NodeID != 0 && include:
		out.Status = "included"
		c.alive(res.NodeID)
		if err := c.lifeline(ctx, ctl, res); err != nil {
			out.Status = "included; " + err.Error()
		}
	case res.NodeID != 0:
		out.Status = "excluded"
	case res.Found:
		out.Status = "node found but it did not finish; retry closer to the stick"
	default:
		out.Status = "no node within " + p.Timeout.String()
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
			Dead: c.isDead(id), GenericClass: fmt.Sprintf("0x%02X", ni.Generic)}
		if id == own {
			st.Controller, st.Device, st.Listening = true, "", true
			out = append(out, st)
			continue
		}
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
func (c *Connector) lifeline(ctx context.Context, ctl *controller, res joinResult) error {
	hasAssoc := false
	for _, cc := range res.Info.CCs {
		hasAssoc = hasAssoc || cc == ccAssociation
	}
	if !hasAssoc {
		return nil
	}
	own, _, _, _ := ctl.snapshot()
	if err := ctl.sendData(ctx, res.NodeID, []byte{ccAssociation, 0x01, 0x01, own}); err != nil {
		return fmt.Errorf("lifeline association not set (the node will only be polled): %w", err)
	}
	c.log.Info("zwave: lifeline association set", "node", res.NodeID)
	return nil
}
