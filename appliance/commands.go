package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/scope"
)

// registerCommands exposes every driver command of the running connectors
// as a JSON-RPC method named TYPE.COMMAND (zwave.include, mbus.scan), with
// the scope the command needs (write unless it says more). The
// params are the command's own, plus "connector" to choose among several
// connectors of the type. It is called when RPC starts and after connectors
// change, and registers each name once.
func (g *Gateway) registerCommands() {
	g.mu.Lock()
	s := g.rpcServer
	var names []string
	docs := map[string]rpc.Doc{}
	scopes := map[string]scope.Scope{}
	for _, name := range g.order {
		c := g.conns[name]
		cm, ok := c.conn.(core.Commander)
		if !ok {
			continue
		}
		for cmd, command := range cm.Commands() {
			method := c.typ + "." + cmd
			if !g.cmdMethods[method] {
				g.cmdMethods[method] = true
				names = append(names, method)
				docs[method] = commandDoc(command)
				scopes[method] = command.NeedScope()
			}
		}
	}
	g.mu.Unlock()
	if s == nil {
		return
	}
	sort.Strings(names)
	for _, method := range names {
		typ, cmd, _ := strings.Cut(method, ".")
		s.Register(method, scopes[method], func(ctx context.Context, params json.RawMessage) (any, error) {
			return g.runCommand(ctx, typ, cmd, params)
		})
		s.Describe(method, docs[method])
	}
}

// commandDoc describes a driver command for rpc.discover: its help, its
// params, and "connector" to choose among several connectors of a type.
func commandDoc(c core.Command) rpc.Doc {
	return rpc.Doc{Summary: c.Help, Params: c.Params, Result: c.Result,
		ExtraParams: []rpc.ContentDescriptor{{Name: "connector", Schema: map[string]any{"type": "string"},
			Description: "the connector to run it on; needed only when several connectors of the type run"}}}
}

// runCommand runs command cmd of the connector of type typ that params
// name ("connector"), or of the only one of that type.
func (g *Gateway) runCommand(ctx context.Context, typ, cmd string, params json.RawMessage) (any, error) {
	obj := map[string]json.RawMessage{}
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, rpc.InvalidParams("params must be an object")
		}
	}
	var want string
	if raw, ok := obj["connector"]; ok {
		if err := json.Unmarshal(raw, &want); err != nil {
			return nil, rpc.InvalidParams("params.connector must be a string")
		}
		delete(obj, "connector")
	}
	g.mu.Lock()
	var found []*connRun
	for _, name := range g.order {
		if c := g.conns[name]; c.typ == typ && (want == "" || c.name == want) {
			found = append(found, c)
		}
	}
	g.mu.Unlock()
	switch {
	case len(found) == 0 && want != "":
		return nil, rpc.InvalidParams(fmt.Sprintf("no %s connector %q (see connectors.list)", typ, want))
	case len(found) == 0:
		return nil, rpc.InvalidParams(fmt.Sprintf("no %s connector is running", typ))
	case len(found) > 1:
		return nil, rpc.InvalidParams(fmt.Sprintf("several %s connectors run: name one in params.connector", typ))
	}
	c := found[0]
	cm, ok := c.conn.(core.Commander)
	if !ok {
		return nil, rpc.InvalidParams(fmt.Sprintf("connector %s offers no commands", c.name))
	}
	command, ok := cm.Commands()[cmd]
	if !ok {
		return nil, rpc.InvalidParams(fmt.Sprintf("connector %s has no command %q", c.name, cmd))
	}
	rest, _ := json.Marshal(obj)
	return command.Run(ctx, rest)
}
