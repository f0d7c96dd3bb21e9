// Package metrics holds osgate's Prometheus metrics, registered on one
// registry that /metrics serves. Counters only ever grow: tests compare
// deltas.
package metrics

import (
	"github.com/osgate/osgate/internal/lru"
	"github.com/osgate/osgate/internal/prom"
)

// Registry is what /metrics serves.
var Registry = prom.NewRegistry()

var (
	// ReadingsIn counts readings produced by connectors.
	ReadingsIn = counter("osgate_readings_in_total", "Readings produced by connectors.", "connector")
	// ReadingsOut counts readings handed to the export sink.
	ReadingsOut = counter("osgate_readings_out_total", "Readings handed to the export sink.", "connector")
	// ReadingsDropped counts readings dropped on purpose or by failure;
	// reason is "range", "transform", "export", "too_large" (a
	// device's message over the managed broker's size limit), "disk_full"
	// (a poll's readings that could not be stored) or a driver's own.
	ReadingsDropped = counter("osgate_readings_dropped_total", "Readings dropped, by reason.", "connector", "reason")
	// ReadingsSuppressed counts readings a deadband held back (unchanged).
	ReadingsSuppressed = counter("osgate_readings_suppressed_total", "Readings held back by a deadband.", "connector")
	// Polls counts polls of devices.
	Polls = counter("osgate_polls_total", "Device polls.", "connector")
	// PollErrors counts polls that failed as a whole (device unreachable).
	PollErrors = counter("osgate_poll_errors_total", "Polls that failed as a whole.", "connector")
	// PollsLate counts polls that started more than a tenth of their
	// device's interval after they were due: the previous poll ran long,
	// or the gateway was too busy to start it on time.
	PollsLate = counter("osgate_polls_late_total", "Polls started more than a tenth of the device's interval after they were due.", "connector")
	// PollsMissed counts polls skipped because the previous poll of the
	// device ran a whole interval or more past their time (a poll less
	// overdue runs late instead).
	PollsMissed = counter("osgate_polls_missed_total", "Polls skipped because the previous poll of the device ran a whole interval or more past their time.", "connector")
	// ChannelErrors counts channel readings with quality bad.
	ChannelErrors = counter("osgate_channel_errors_total", "Channel readings with quality bad.", "connector")
	// ListenerRestarts counts restarts of listeners that returned.
	ListenerRestarts = counter("osgate_listener_restarts_total", "Listener restarts.", "connector")

	// DeviceState is 1 for the state each configured device is in and 0
	// for the others (state: online, degraded, offline, disabled, unknown).
	DeviceState = gaugeVec("osgate_device_state", "1 for the state each configured device is in (online, degraded, offline, disabled, unknown), 0 for the others.", "connector", "device", "state")
	// DeviceStateSince is when each device's state began.
	DeviceStateSince = gaugeVec("osgate_device_state_since_timestamp_seconds", "When each configured device entered its state (Unix time).", "connector", "device")
	// DeviceFailures counts each device's consecutive failed polls.
	DeviceFailures = gaugeVec("osgate_device_failures", "Consecutive failed polls (or reports) of each configured device; 0 after a good one.", "connector", "device")

	// ExportQueue is the number of messages waiting for the broker.
	ExportQueue = gauge("osgate_export_queue_depth", "Messages waiting to be acknowledged by the local broker.")
	// ExportConnected is 1 while the export client is connected.
	ExportConnected = gauge("osgate_export_connected", "1 while the export MQTT client is connected.")
	// ExportMessages counts messages acknowledged by the broker.
	ExportMessages = counter0("osgate_export_messages_total", "Messages acknowledged by the local broker.")
	// ExportErrors counts publish failures (retried).
	ExportErrors = counter0("osgate_export_errors_total", "Failed publish attempts (retried).")

	// DiskFree is the free space of the state dir's file system (where the
	// export spool lives), in bytes.
	DiskFree = gauge("osgate_disk_free_bytes", "Free space of the state dir's file system (export spool, broker persistence), in bytes.")
	// DiskWarn is gateway.disk_warn_bytes: below it health is degraded.
	DiskWarn = gauge("osgate_disk_warn_bytes", "Free space below which health is degraded (gateway.disk_warn_bytes).")
	// DiskFull is 1 while the export spool's writes fail for lack of space.
	DiskFull = gauge("osgate_disk_full", "1 while readings cannot be stored because the state dir's disk is full.")

	// ClockSynced is 1 once a time source (or the operating system, with
	// clock source "system") has set or confirmed the clock.
	ClockSynced = gauge("osgate_clock_synced", "1 once a time source has set or confirmed the clock; 0 while readings are stamped from the restored clock (quality uncertain).")
	// ClockState is 1 for the clock's state and its source: synced (source:
	// the time source), restored (source: saved or build, the time the
	// clock was restored from) or unsynced (source: system).
	ClockState = gaugeVec("osgate_clock_state", "1 for the clock's state (synced, restored, unsynced) with its source (a time source, saved, build, system).", "state", "source")
	// ClockOffset is how far the last time source that answered was from
	// the clock before it was set (seconds; positive: the clock was behind).
	ClockOffset = gauge("osgate_clock_offset_seconds", "The last answering time source's time minus the clock's, before the clock was set (seconds).")
	// ClockLastSync is when a time source last answered.
	ClockLastSync = gauge("osgate_clock_last_sync_timestamp_seconds", "When a time source last set or confirmed the clock (Unix time; 0: never).")
	// ClockHeld is the messages waiting on disk for a time source.
	ClockHeld = gauge("osgate_clock_held_messages", "Messages of readings waiting on disk for a time source (see clock.hold).")

	// BrokerRestarts counts restarts of the managed Mosquitto.
	BrokerRestarts = counter0("osgate_broker_restarts_total", "Restarts of the managed Mosquitto.")

	// RPCRequests counts JSON-RPC calls by method and outcome.
	RPCRequests = counter("osgate_rpc_requests_total", "JSON-RPC requests by method and outcome.", "method", "outcome")
	// RPCAuthFailures counts requests refused for a wrong or missing key.
	RPCAuthFailures = counter0("osgate_rpc_auth_failures_total", "Requests refused for a wrong or missing API key.")

	// BoundedEntries is the size of each bounded cache that input fills
	// (internal/lru): export topics of devices, log-once sets.
	BoundedEntries = gaugeVec("osgate_bounded_entries", "Entries of a bounded cache fed by input, by cache and connector.", "cache", "connector")
	// BoundedEvictions counts entries a full bounded cache let go: a cache
	// that churns is smaller than the input it sees (many more device names
	// than expected, or a flood).
	BoundedEvictions = counter("osgate_bounded_evictions_total", "Entries evicted from a full bounded cache, by cache and connector.", "cache", "connector")
)

// Bounded returns the metrics of one bounded cache for internal/lru.
func Bounded(cache, connector string) lru.Metrics {
	return lru.Metrics{
		Entries:   BoundedEntries.WithLabelValues(cache, connector),
		Evictions: BoundedEvictions.WithLabelValues(cache, connector),
	}
}

// Register serves a collector defined elsewhere (a driver's, through
// core.Stats). The same collector registered again is no error; another
// one under a name already taken is a bug in the binary, and panics like
// the registrations above.
func Register(c prom.Collector) { Registry.MustRegister(c) }

func init() { prom.RegisterRuntime(Registry) }

func counter(name, help string, labels ...string) *prom.CounterVec {
	c := prom.NewCounterVec(name, help, labels...)
	Registry.MustRegister(c)
	return c
}

func gaugeVec(name, help string, labels ...string) *prom.GaugeVec {
	g := prom.NewGaugeVec(name, help, labels...)
	Registry.MustRegister(g)
	return g
}

func gauge(name, help string) *prom.Gauge {
	g := prom.NewGauge(name, help)
	Registry.MustRegister(g)
	return g
}

func counter0(name, help string) *prom.Counter {
	c := prom.NewCounter(name, help)
	Registry.MustRegister(c)
	return c
}
