//go:build testhook

package main

import (
	"log/slog"
	"os"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/ota"
)

// SimDeviceEnv names the directory of a simulated device (ota.SimDevice)
// for `osgate run`: the fleet simulation runs gateways as processes on one
// machine, each on such a device instead of gokrazy. Only binaries built
// with the tag testhook read it.
const SimDeviceEnv = "OSGATE_SIM_DEVICE"

// simDevice opens the simulated device when SimDeviceEnv is set: the
// version of its running root becomes the gateway's version, and a root
// made unhealthy makes the gateway's health say so.
func simDevice(log *slog.Logger) (ota.Updater, error) {
	dir := os.Getenv(SimDeviceEnv)
	if dir == "" {
		return nil, nil
	}
	d, err := ota.OpenSimDevice(dir, appliance.Version)
	if err != nil {
		return nil, err
	}
	appliance.Version = d.Version()
	if why := d.Unhealthy(); why != "" {
		health.SetTestUnhealthy(why)
	}
	id, _ := d.BootID()
	log.Info("running on a simulated device (testhook)", "dir", dir, "version", appliance.Version, "boot", id, "unhealthy", d.Unhealthy())
	return d, nil
}
