package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/strict"
)

// The methods behind the technician's pages that are not status and lists
// of their own: the last values of channels, the recent log, validating a
// document, and the diagnostics bundle. They are methods like any other,
// for any client.

// registerDiagnostics puts them on s.
func (g *Gateway) registerDiagnostics(s *rpc.Server) {
	s.Register("devices.values", scope.Read, g.rpcValues)
	s.Register("gateway.logs", scope.Read, g.rpcLogs)
	s.Register("config.validate", scope.Read, rpcValidate)
	s.Register("gateway.diagnostics", scope.Read, g.rpcDiagnostics)
}

// maxTrendPoints bounds the trend points devices.values returns per
// channel: all it keeps.
const maxTrendPoints = trendLen

type valuesParams struct {
	Device string `json:"device" doc:"one configured device (devices.list); absent: every one"`
	Points int    `json:"points" doc:"trend points per numeric channel, thinned evenly (0, the default: none; at most 120)"`
}

type deviceValuesResult struct {
	Device    string         `json:"device"`
	Connector string         `json:"connector"`
	Channels  []channelValue `json:"channels"`
}

func (g *Gateway) rpcValues(_ context.Context, params json.RawMessage) (any, error) {
	var p valuesParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	if p.Points < 0 || p.Points > maxTrendPoints {
		return nil, rpc.InvalidParams(fmt.Sprintf("points: %d is not 0..%d", p.Points, maxTrendPoints))
	}
	g.mu.Lock()
	secrets := g.cfg.Secrets()
	var devs []*devRun
	for _, name := range g.order {
		for _, d := range g.conns[name].devices {
			if p.Device == "" || d.dev.Name == p.Device {
				devs = append(devs, d)
			}
		}
	}
	g.mu.Unlock()
	if p.Device != "" && len(devs) == 0 {
		return nil, rpc.InvalidParams(fmt.Sprintf("no running device %q (see devices.list)", p.Device))
	}
	out := make([]deviceValuesResult, 0, len(devs))
	for _, d := range devs {
		chans := d.vals.snapshot(p.Points)
		for i := range chans {
			// Devices and servers may echo a credential back.
			chans[i].Error = redact.Scrub(chans[i].Error, secrets)
			chans[i].Dropped = redact.Scrub(chans[i].Dropped, secrets)
			if s, ok := chans[i].Value.(string); ok {
				chans[i].Value = redact.Scrub(s, secrets)
			}
		}
		out = append(out, deviceValuesResult{Device: d.dev.Name, Connector: d.conn.name, Channels: chans})
	}
	return out, nil
}

type logsParams struct {
	Level string `json:"level" doc:"the lowest level to return: info (the default), warn or error"`
	Limit int    `json:"limit" doc:"at most this many lines, the newest (default and at most 500)"`
}

type logsResult struct {
	Lines []string `json:"lines" doc:"the log lines, oldest first, as osgate writes them (key=value text)"`
	// Evicted counts the lines no longer kept.
	Evicted uint64 `json:"evicted" doc:"older lines no longer kept in memory since osgate started"`
}

func (g *Gateway) rpcLogs(_ context.Context, params json.RawMessage) (any, error) {
	var p logsParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	lv := slog.LevelInfo
	if p.Level != "" {
		if err := lv.UnmarshalText([]byte(p.Level)); err != nil || lv < slog.LevelInfo {
			return nil, rpc.InvalidParams(fmt.Sprintf("level: %.16q is not info, warn or error", p.Level))
		}
	}
	if p.Limit < 0 || p.Limit > logLines {
		return nil, rpc.InvalidParams(fmt.Sprintf("limit: %d is not 0..%d", p.Limit, logLines))
	}
	if p.Limit == 0 {
		p.Limit = logLines
	}
	return g.recentLogs(p.Limit, lv), nil
}

// recentLogs is the ring's lines with the running configuration's
// secrets cut out (the supervisor cut those of every configuration it ran
// already; a gateway made with New has only this).
func (g *Gateway) recentLogs(limit int, lv slog.Level) logsResult {
	g.mu.Lock()
	secrets := g.cfg.Secrets()
	g.mu.Unlock()
	lines, evicted := g.logs.recent(limit, lv)
	for i := range lines {
		lines[i] = redact.Scrub(lines[i], secrets)
	}
	if lines == nil {
		lines = []string{}
	}
	return logsResult{Lines: lines, Evicted: evicted}
}

type validateParams struct {
	Config string `json:"config" strict:"required" doc:"the osgate.json document, as text"`
}

type validateResult struct {
	Valid  bool            `json:"valid"`
	Errors []validateError `json:"errors" doc:"every problem, sorted by JSON path; the document's secret values are cut out"`
	// Counts of a valid document.
	Connectors int `json:"connectors"`
	Devices    int `json:"devices"`
	Channels   int `json:"channels"`
}

type validateError struct {
	Path    string `json:"path" doc:"the JSON path, e.g. connectors[2].devices[0].channels[3].scale; empty for the document (invalid JSON: the message has the line and column)"`
	Message string `json:"message"`
}

// rpcValidate checks a document as osgate validate does: strictly, with
// every connector's settings checked by its driver, without running
// anything.
func rpcValidate(_ context.Context, params json.RawMessage) (any, error) {
	var p validateParams
	if err := rpc.Params(params, &p); err != nil {
		return nil, err
	}
	res := validateResult{Errors: []validateError{}}
	cfg, err := config.Parse([]byte(p.Config))
	if err != nil {
		var es strict.Errors
		if !errors.As(err, &es) {
			es = strict.Errors{{Msg: err.Error()}}
		}
		for _, e := range es {
			res.Errors = append(res.Errors, validateError{Path: e.Path, Message: e.Msg})
		}
		return res, nil
	}
	res.Valid = true
	res.Connectors = len(cfg.Connectors)
	for _, cn := range cfg.Connectors {
		res.Devices += len(cn.Devices)
		for _, d := range cn.Devices {
			res.Channels += len(d.Channels)
		}
	}
	return res, nil
}

// diagnostics is the bundle a technician sends to support. It holds
// nothing its caller could not read with the other methods: the
// configuration only for an admin key (as gateway.config).
type diagnostics struct {
	Generated    string            `json:"generated"`
	Versions     map[string]string `json:"versions" doc:"osgate, Go, the operating system and architecture, when osgate was built"`
	Status       any               `json:"status" doc:"gateway.status"`
	ConfigStatus any               `json:"config_status" doc:"gateway.config.status"`
	Config       any               `json:"config,omitempty" doc:"gateway.config (redacted): only for an admin key"`
	ConfigNote   string            `json:"config_note,omitempty" doc:"why config is absent"`
	Connectors   any               `json:"connectors" doc:"connectors.list"`
	Devices      any               `json:"devices" doc:"devices.list"`
	Values       any               `json:"values" doc:"devices.values, without trends"`
	OTA          any               `json:"ota,omitempty" doc:"ota.status, when the update agent runs"`
	Logs         logsResult        `json:"logs" doc:"gateway.logs"`
	Metrics      string            `json:"metrics" doc:"a snapshot of /metrics, Prometheus text format"`
	Errors       map[string]string `json:"errors,omitempty" doc:"parts that could not be gathered, and why"`
}

func (g *Gateway) rpcDiagnostics(ctx context.Context, _ json.RawMessage) (any, error) {
	d := diagnostics{
		Generated: stamp(time.Now()),
		Versions: map[string]string{"osgate": Version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
			"built": BuildTime},
		Errors: map[string]string{},
	}
	part := func(name string, f func(context.Context, json.RawMessage) (any, error), params string) any {
		v, err := f(ctx, json.RawMessage(params))
		if err != nil {
			d.Errors[name] = err.Error()
		}
		return v
	}
	d.Status = part("status", g.rpcStatus, "")
	d.ConfigStatus = part("config_status", func(context.Context, json.RawMessage) (any, error) {
		if g.configStatus == nil {
			return map[string]any{"source": "direct"}, nil
		}
		return g.configStatus(), nil
	}, "")
	if rpc.CallerScope(ctx).Allows(scope.Admin) {
		g.mu.Lock()
		d.Config = g.cfg.Redacted()
		g.mu.Unlock()
	} else {
		d.ConfigNote = fmt.Sprintf("the configuration is left out: gateway.config needs a key with scope admin; this key's scope is %q", rpc.CallerScope(ctx))
	}
	d.Connectors = part("connectors", g.rpcConnectors, "")
	d.Devices = part("devices", g.rpcDevices, "")
	d.Values = part("values", g.rpcValues, "")
	if m, ok := g.extraMethods["ota.status"]; ok {
		d.OTA = part("ota", m.Handler, "")
	}
	d.Logs = g.recentLogs(logLines, slog.LevelInfo)
	var buf bytes.Buffer
	if err := writeMetrics(&buf); err != nil {
		d.Errors["metrics"] = err.Error()
	}
	d.Metrics = buf.String()
	if len(d.Errors) == 0 {
		d.Errors = nil
	}
	return d, nil
}

// writeMetrics writes what /metrics serves now, in Prometheus's text
// format.
func writeMetrics(buf *bytes.Buffer) error {
	return metrics.Registry.WriteText(buf)
}

// methodDocsMore describe the methods of this file for rpc.discover.
var methodDocsMore = map[string]rpc.Doc{
	"devices.values": {Summary: "The last value of every channel of the configured devices: unit, quality, time, the last error, how many readings failed, and a trend of the last 10 minutes.",
		Params: valuesParams{}, Result: []deviceValuesResult{}},
	"gateway.logs": {Summary: "The gateway's recent log lines (info and above, the last 500 kept in memory), secrets cut out.",
		Params: logsParams{}, Result: logsResult{}},
	"config.validate": {Summary: "Check an osgate.json document as `osgate validate` does, without running it: every problem with its JSON path.",
		Params: validateParams{}, Result: validateResult{}},
	"gateway.diagnostics": {Summary: "Everything support asks for at once: versions, status, config status, connectors, devices, last values, recent log lines and a /metrics snapshot; the redacted configuration for an admin key only.",
		Result: diagnostics{}},
}
