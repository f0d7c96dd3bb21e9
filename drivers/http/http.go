// Package http is osgate's HTTP connector, in one of two modes:
//
//   - ingest: a Listener serving POST requests (by default
//     /ingest/{device}) whose JSON bodies are mapped to readings with the
//     same mapping rules as the MQTT connector, guarded by API keys checked
//     by internal/apikey exactly as the RPC service checks them;
//   - poll: a Poller that GETs each device's URL at the device's interval
//     and maps the JSON response to the device's channels.
//
// A connector with settings.ingest ingests; one without polls.
package http

import (
	"log/slog"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

func init() { core.Register("http", New) }

// New checks the configuration and returns an ingest (Listener) or poll
// (Poller) connector; it does no I/O.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	s, es := parseSettings(cfg.Settings)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("connector", cfg.Name)
	if s.Ingest != nil {
		ic, errs := parseIngest(s, cfg.Devices)
		es = append(es, errs...)
		if err := es.Err(); err != nil {
			return nil, err
		}
		return newIngest(cfg.Name, log, ic, cfg.Stats), nil
	}
	p := &poller{name: cfg.Name, log: log, set: s, devices: map[string]*pollDevice{}}
	for i, d := range cfg.Devices {
		at := strict.Index("devices", i)
		pd, errs := parseDevice(s, d)
		es.Merge(at, errs.Err())
		if _, dup := p.devices[d.Name]; dup {
			es.Add(at+".name", "device %q appears twice", d.Name)
		}
		p.devices[d.Name] = pd
	}
	checked := map[string]bool{} // "tls" against each scheme the URLs use
	for _, d := range cfg.Devices {
		if sc := p.devices[d.Name].scheme; sc != "" && !checked[sc] {
			checked[sc] = true
			s.CheckScheme(&es, "settings", sc, sc == "https", "https://", "http://")
		}
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return p, nil
}
