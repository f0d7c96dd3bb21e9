package ota

import (
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// The agent's metrics, served on /metrics with the gateway's.
var (
	// otaChecks counts checks of the release channel; outcome is
	// "current" (nothing to do), "update" (a release to install),
	// "refused" (bad signature, wrong channel, too old, failed before) or
	// "error".
	otaChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osgate_ota_checks_total",
		Help: "Release channel checks by outcome: current, update, refused, error.",
	}, []string{"outcome"})
	// otaUpdates counts finished updates; outcome is "confirmed",
	// "rolled_back" or "failed" (given up before a try).
	otaUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osgate_ota_updates_total",
		Help: "Finished updates by outcome: confirmed, rolled_back, failed.",
	}, []string{"outcome"})
	// otaDownloadBytes counts bytes of release parts downloaded.
	otaDownloadBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osgate_ota_download_bytes_total",
		Help: "Bytes of release parts downloaded.",
	})
)

func init() { metrics.Registry.MustRegister(otaChecks, otaUpdates, otaDownloadBytes) }
