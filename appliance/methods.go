package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/osgate/osgate/appliance/clock"
	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/scope"
)

// registerMethods puts the GatewayService's JSON-RPC methods on s, with the
// scope each needs: read for status and lists, write for what changes the
// plant or the connectors, admin for the configuration and what parts
// outside the gateway add (OTA declares its own). The same table serves
// HTTP and the cloud over MQTT.
func (g *Gateway) registerMethods(s *rpc.Server) {
	s.Register("gateway.status", scope.Read, g.rpcStatus)
	s.Register("gateway.config", scope.Admin, func(context.Context, json.RawMessage) (any, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.cfg.Redacted(), nil
	})
	s.Register("gateway.config.status", scope.Read, func(context.Context, json.RawMessage) (any, error) {
		if g.configStatus == nil {
			return map[string]any{"source": "direct"}, nil
		}
		return g.configStatus(), nil
	})
	s.Register("devices.list", scope.Read, g.rpcDevices)
	s.Register("device.read", scope.Read, g.rpcRead)
	s.Register("device.write", scope.Write, g.rpcWrite)
	s.Register("connectors.list", scope.Read, g.rpcConnectors)
	s.Register("connectors.restart", scope.Write, g.rpcRestart)
	s.Register("connector.command", scope.Write, g.rpcCommand)
	g.registerDiagnostics(s)
	for name, m := range g.extraMethods {
		s.Register(name, m.Scope, m.Handler)
		s.Describe(name, m.Doc)
	}
	for name, d := range methodDocs {
		s.Describe(name, d)
	}
	for name, d := range methodDocsMore {
		s.Describe(name, d)
	}
}

// methodDocs describe the gateway's methods for rpc.discover; the README
// (appliance/rpc/README.md) says the same for people.
var methodDocs = map[string]rpc.Doc{
	"gateway.status": {Summary: "The gateway's identity, version and health: the same verdict as GET /healthz, with its reasons.",
		Result: statusResult{Health: health.Report{}}},
	"gateway.config": {Summary: `The running configuration in osgate.json shape, passwords and key hashes replaced by "***".`,
		ResultDoc: "an osgate.json document"},
	"gateway.config.status": {Summary: "Where the running configuration came from: the fleet server, its cache, the local file or the embedded default, and the last fetch.",
		Result: source.Status{}},
	"devices.list": {Summary: "Every configured device with its connector, interval, channels and the outcome of its polls.",
		Result: []deviceInfo{}},
	"device.read": {Summary: "Poll a device now (waiting for a poll in progress) and return its readings through the channel transforms, without deadband; nothing is exported.",
		Params: readParams{}, Result: readResult{}},
	"device.write": {Summary: "Write a value to a writable channel, in the channel's exported unit: the inverse of scale/offset (or the channel's inverse expression) is applied first.",
		Params: writeParams{}, Result: writeResult{}},
	"connectors.list": {Summary: "Every connector with its type, kind (poller, listener), devices, start time and driver commands.",
		Result: []connectorInfo{}},
	"connectors.restart": {Summary: "Stop a connector, build it anew from the configuration and start it; the others keep running.",
		Params: restartParams{}, Result: restartResult{}},
	"connector.command": {Summary: "Run a driver command of one connector (connectors.list lists them); the same commands are methods of their own, TYPE.COMMAND.",
		Params: commandParams{}, ResultDoc: "what the driver's command returns"},
}

type statusResult struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Started string `json:"started"`
	// ClockSet: a time source has set or confirmed the clock (readings
	// are of quality good); Clock says more.
	ClockSet bool        `json:"clock_set"`
	Clock    clockStatus `json:"clock"`
	Health   any         `json:"health"`
	// Bridge is the managed broker's bridge to the cloud.
	Bridge bridgeStatus `json:"bridge"`
	// System is the gateway's machine, by the system connector's channel
	// names, and osgate's own memory.
	System map[string]any `json:"system"`
}

// bridgeStatus is the bridge as its notifications tell it.
type bridgeStatus struct {
	Configured bool   `json:"configured"`
	Connected  *bool  `json:"connected,omitempty"`
	Since      string `json:"since,omitempty"`
}

// clockStatus is the clock's state and the readings waiting for it.
type clockStatus struct {
	clock.Status
	// Held is how many messages of readings wait on disk for a time
	// source.
	Held int `json:"held"`
}

func (g *Gateway) rpcStatus(ctx context.Context, _ json.RawMessage) (any, error) {
	g.mu.Lock()
	id := g.cfg.Gateway.ID
	secrets := g.cfg.Secrets()
	bridged := managed(g.cfg) && g.cfg.Broker.Bridge != nil
	g.mu.Unlock()
	// Connector errors come from devices and servers, which may echo a
	// credential back.
	r := g.health.Report()
	for i, reason := range r.Reasons {
		r.Reasons[i] = redact.Scrub(reason, secrets)
	}
	for i := range r.Connectors {
		r.Connectors[i].LastError = redact.Scrub(r.Connectors[i].LastError, secrets)
	}
	cs := clockStatus{Status: g.clock.Status()}
	for i, e := range cs.Errors {
		cs.Errors[i] = redact.Scrub(e, secrets)
	}
	if g.hold != nil {
		cs.Held = g.hold.held()
	}
	if g.export != nil {
		if t, ok := g.export.Oldest(); ok {
			r.Export.Oldest = t.UTC().Format(time.RFC3339Nano)
		}
	}
	br := bridgeStatus{Configured: bridged}
	if known, up, since := g.devices.bridgeState(); known {
		br.Connected, br.Since = &up, stamp(since)
	}
	return statusResult{
		ID:       id,
		Version:  Version,
		Started:  g.started.UTC().Format(time.RFC3339),
		ClockSet: g.clock.Synced(),
		Clock:    cs,
		Health:   r,
		Bridge:   br,
		System:   g.host.read(ctx),
	}, nil
}

type deviceInfo struct {
	Name      string   `json:"name"`
	Connector string   `json:"connector"`
	Type      string   `json:"type"`
	Interval  string   `json:"interval"`
	Channels  []string `json:"channels"`
	State     string   `json:"state"`
	Since     string   `json:"since"`
	Reason    string   `json:"reason,omitempty"`
	LastPoll  string   `json:"last_poll,omitempty"`
	LastOK    string   `json:"last_ok,omitempty"`
	LastError string   `json:"last_error,omitempty"`
	Failures  int      `json:"failures"`
}

func (g *Gateway) rpcDevices(context.Context, json.RawMessage) (any, error) {
	g.mu.Lock()
	out := []deviceInfo{}
	for _, name := range g.order {
		c := g.conns[name]
		for _, d := range c.devices {
			info := deviceInfo{Name: d.dev.Name, Connector: c.name, Type: c.typ, Interval: d.dev.Interval.String(), Channels: []string{}}
			for _, ch := range d.dev.Channels {
				info.Channels = append(info.Channels, ch.Name)
			}
			d.mu.Lock()
			st := d.st
			d.mu.Unlock()
			info.State, info.Since, info.Reason = string(st.state), stamp(st.since), st.reason
			info.LastPoll, info.LastOK, info.Failures = stamp(st.lastPoll), stamp(st.lastOK), st.failures
			if st.lastErr != nil {
				info.LastError = st.lastErr.Error()
			}
			out = append(out, info)
		}
	}
	g.mu.Unlock()
	for _, dd := range g.devices.disabledDevices() {
		info := deviceInfo{Name: dd.dev.Name, Connector: dd.connector, Type: dd.typ, Channels: []string{},
			State: string(health.DeviceDisabled), Since: stamp(dd.since), Reason: dd.reason}
		if dd.dev.Interval > 0 {
			info.Interval = dd.dev.Interval.String()
		}
		for _, ch := range dd.dev.Channels {
			info.Channels = append(info.Channels, ch.Name)
		}
		out = append(out, info)
	}
	return out, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// readingJSON is a reading as RPC returns it.
type readingJSON struct {
	Channel string `json:"channel"`
	Value   any    `json:"value"`
	Unit    string `json:"unit,omitempty"`
	Time    string `json:"time"`
	Quality string `json:"quality"`
	Error   string `json:"error,omitempty"`
}

// findDevice returns a configured device and its connector.
func (g *Gateway) findDevice(name string) (*devRun, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, cn := range g.order {
		if d := g.conns[cn].byName[name]; d != nil {
			return d, nil
		}
	}
	return nil, rpc.InvalidParams(fmt.Sprintf("no configured device %q (see devices.list)", name))
}

type readParams struct {
	Device string `json:"device" strict:"required" doc:"the configured device's name (devices.list)"`
}

type readResult struct {
	Device   string        `json:"device"`
	Readings []readingJSON `json:"readings"`
}

func (g *Gateway) rpcRead(ctx context.Context, params json.RawMessage) (any, error) {
	var p readParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	d, err := g.findDevice(p.Device)
	if err != nil {
		return nil, err
	}
	poller, ok := d.conn.conn.(core.Poller)
	if !ok {
		return nil, fmt.Errorf("device %s is on connector %s (%s), whose devices report on their own: it cannot be polled", d.dev.Name, d.conn.name, d.conn.typ)
	}
	// A poll in which every channel failed still answers with its
	// readings, each saying why it failed.
	rs, err := d.poll(ctx, poller, nil)
	if err != nil && len(rs) == 0 {
		return nil, fmt.Errorf("read %s: %w", d.dev.Name, err)
	}
	now := time.Now()
	chains := d.conn.reads[d.dev.Name]
	out := []readingJSON{}
	for i := range rs {
		r := rs[i]
		if ch := chains[r.Channel]; ch != nil {
			o := ch.Apply(&r, now)
			if o.Err != nil {
				r.Quality, r.Err = core.Bad, o.Err
			}
		}
		rj := readingJSON{Channel: r.Channel, Value: r.Value, Unit: r.Unit, Time: stamp(r.Time), Quality: r.Quality.String()}
		if r.Err != nil {
			rj.Error = r.Err.Error()
		}
		out = append(out, rj)
	}
	return readResult{Device: d.dev.Name, Readings: out}, nil
}

type writeParams struct {
	Device  string `json:"device" strict:"required" doc:"the configured device's name"`
	Channel string `json:"channel" strict:"required" doc:"the channel's configured name, which must be \"writable\": true"`
	Value   any    `json:"value" strict:"required" doc:"the value in the channel's exported unit: a number, a bool or a string"`
}

type writeResult struct {
	Device  string `json:"device"`
	Channel string `json:"channel"`
	Written any    `json:"written" doc:"what went to the device, after the inverse transforms"`
}

func (g *Gateway) rpcWrite(ctx context.Context, params json.RawMessage) (any, error) {
	var p writeParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	d, err := g.findDevice(p.Device)
	if err != nil {
		return nil, err
	}
	var ch *core.Channel
	for _, c := range d.dev.Channels {
		if c.Name == p.Channel {
			ch = c
		}
	}
	if ch == nil {
		return nil, rpc.InvalidParams(fmt.Sprintf("device %s has no channel %q", d.dev.Name, p.Channel))
	}
	if !ch.Writable {
		return nil, rpc.InvalidParams(fmt.Sprintf("channel %s of %s is not writable (set \"writable\": true in its config)", ch.Name, d.dev.Name))
	}
	w, ok := d.conn.conn.(core.Writer)
	if !ok {
		return nil, fmt.Errorf("connector %s (%s) cannot write", d.conn.name, d.conn.typ)
	}
	v, err := d.conn.reads[d.dev.Name][ch.Name].Inverse(p.Value)
	if err != nil {
		return nil, rpc.InvalidParams(fmt.Sprintf("channel %s: %v", ch.Name, err))
	}
	wctx, cancel := context.WithTimeout(ctx, d.dev.Timeout)
	defer cancel()
	if err := w.Write(wctx, d.dev, ch.Name, v); err != nil {
		return nil, fmt.Errorf("write %s.%s: %w", d.dev.Name, ch.Name, err)
	}
	return writeResult{Device: d.dev.Name, Channel: ch.Name, Written: v}, nil
}

type connectorInfo struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Kind     string   `json:"kind"`
	Devices  int      `json:"devices"`
	Started  string   `json:"started"`
	Commands []string `json:"commands,omitempty"`
}

func (g *Gateway) rpcConnectors(context.Context, json.RawMessage) (any, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []connectorInfo{}
	for _, name := range g.order {
		c := g.conns[name]
		ci := connectorInfo{Name: c.name, Type: c.typ, Kind: c.kind(), Devices: len(c.devices), Started: stamp(c.started)}
		if cm, ok := c.conn.(core.Commander); ok {
			for n := range cm.Commands() {
				ci.Commands = append(ci.Commands, n)
			}
			sort.Strings(ci.Commands)
		}
		out = append(out, ci)
	}
	return out, nil
}

type restartParams struct {
	Name string `json:"name" strict:"required" doc:"the connector's name (connectors.list)"`
}

type restartResult struct {
	Restarted string `json:"restarted"`
}

func (g *Gateway) rpcRestart(ctx context.Context, params json.RawMessage) (any, error) {
	var p restartParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	if err := g.RestartConnector(p.Name); err != nil {
		return nil, err
	}
	return restartResult{Restarted: p.Name}, nil
}

// RestartConnector stops a connector, builds it anew from the config and
// starts it; the other connectors keep running.
func (g *Gateway) RestartConnector(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.conns[name]
	if old == nil {
		return rpc.InvalidParams(fmt.Sprintf("no connector %q (see connectors.list)", name))
	}
	idx := -1
	for i, cc := range g.cfg.Connectors {
		if cc.Name == name {
			idx = i
		}
	}
	old.stop()
	c, err := g.newConnRun(g.cfg, idx)
	if err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	c.inherit(old)
	g.conns[name] = c
	if g.connCtx != nil {
		c.start(g.connCtx)
	}
	return nil
}

type commandParams struct {
	Connector string          `json:"connector" strict:"required" doc:"the connector's name"`
	Command   string          `json:"command" strict:"required" doc:"one of the connector's commands (connectors.list)"`
	Params    json.RawMessage `json:"params" doc:"the command's own params, an object (see its TYPE.COMMAND method)"`
}

func (g *Gateway) rpcCommand(ctx context.Context, params json.RawMessage) (any, error) {
	var p commandParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	g.mu.Lock()
	c := g.conns[p.Connector]
	g.mu.Unlock()
	if c == nil {
		return nil, rpc.InvalidParams(fmt.Sprintf("no connector %q (see connectors.list)", p.Connector))
	}
	cm, ok := c.conn.(core.Commander)
	if !ok {
		return nil, rpc.InvalidParams(fmt.Sprintf("connector %s (%s) offers no commands", c.name, c.typ))
	}
	cmd, ok := cm.Commands()[p.Command]
	if !ok {
		return nil, rpc.InvalidParams(fmt.Sprintf("connector %s has no command %q (see connectors.list)", c.name, p.Command))
	}
	// connector.command needs write; a command that needs more (admin)
	// is refused to a write key here as its own method would be.
	if need, have := cmd.NeedScope(), rpc.CallerScope(ctx); !have.Allows(need) {
		return nil, &rpc.Error{Code: rpc.CodeForbidden, Message: fmt.Sprintf("forbidden: %s command %s needs a key with scope %q or more; this key's scope is %q",
			c.typ, p.Command, need, have)}
	}
	if len(p.Params) == 0 {
		p.Params = json.RawMessage("{}")
	}
	return cmd.Run(ctx, p.Params)
}
