package core

import (
	"github.com/osgate/osgate/internal/lru"
	"github.com/osgate/osgate/internal/prom"
)

// Stats is how a driver counts what only it sees. The gateway gives each
// connector its own (ConnectorConfig.Stats), serves what it counts on
// /metrics and labels it with the connector's name, so a driver never
// imports the gateway's metrics. Its methods are safe for concurrent use.
type Stats interface {
	// Dropped counts n readings the driver dropped before it could emit
	// them (a report queue that was full), for reason, one word
	// ("zwave_queue"): osgate_readings_dropped_total{connector,reason}.
	Dropped(reason string, n int)
	// Cache returns the metrics of one of the connector's bounded caches
	// (internal/lru), by name: osgate_bounded_entries and
	// osgate_bounded_evictions_total{cache,connector}.
	Cache(name string) lru.Metrics
	// Register serves a collector the driver defines itself, with metric
	// names and labels of its own (a connector label included). The same
	// collector registered again, by another connector of the type or
	// after a restart, is no error.
	Register(c prom.Collector)
}

// StatsOf returns cfg.Stats, or a Stats that counts nothing when it is nil:
// a connector built outside the gateway (a test) has none.
func StatsOf(cfg ConnectorConfig) Stats {
	if cfg.Stats == nil {
		return NoStats{}
	}
	return cfg.Stats
}

// NoStats counts nothing.
type NoStats struct{}

func (NoStats) Dropped(string, int)      {}
func (NoStats) Cache(string) lru.Metrics { return lru.Metrics{} }
func (NoStats) Register(prom.Collector)  {}
