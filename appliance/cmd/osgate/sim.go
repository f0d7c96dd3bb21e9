//go:build !testhook

package main

import (
	"log/slog"

	"github.com/osgate/osgate/ota"
)

// simDevice is the fleet simulation's device (sim_testhook.go): never in
// a release.
func simDevice(*slog.Logger) (ota.Updater, error) { return nil, nil }
