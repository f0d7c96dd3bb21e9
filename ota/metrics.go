package ota

import (
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/prom"
)

// The agent's metrics, served on /metrics with the gateway's.
var (
	// otaChecks counts checks of the release channel; outcome is
	// "current" (nothing to do), "update" (a release to install),
	// "refused" (bad signature, wrong channel, too old, failed before) or
	// "error".
	otaChecks = prom.NewCounterVec("osgate_ota_checks_total",
		"Release channel checks by outcome: current, update, refused, error.", "outcome")
	// otaUpdates counts finished updates; outcome is "confirmed",
	// "rolled_back" or "failed" (given up before a try).
	otaUpdates = prom.NewCounterVec("osgate_ota_updates_total",
		"Finished updates by outcome: confirmed, rolled_back, failed.", "outcome")
	// otaDownloadBytes counts bytes of release parts downloaded.
	otaDownloadBytes = prom.NewCounter("osgate_ota_download_bytes_total",
		"Bytes of release parts downloaded.")
)

func init() { metrics.Registry.MustRegister(otaChecks, otaUpdates, otaDownloadBytes) }
