package ota

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// WatchdogDevice is the hardware watchdog of a gokrazy device.
const WatchdogDevice = "/dev/watchdog"

// feedOrphanedWatchdog feeds the hardware watchdog when nobody else does.
//
// gokrazy's init feeds it, holding the device open (a second open fails
// with EBUSY), except in a try boot: there the first init execs the new
// root's init, whose feeding goroutine opens /dev/watchdog before the new
// root's /dev is mounted, fails and gives up, while the old init's open
// file is closed by the exec without the magic close ("watchdog did not
// stop!"). Nothing feeds the running watchdog then, and it resets the
// machine (after 30 s in qemu's i6300esb, seen in image/vmtest's TestOTA):
// every try boot would end in a rollback before it could confirm. So in a
// boot whose kernel command line (/proc/cmdline) says
// gokrazy.try_boot_inactive=1 (the try boot, and the rest of it after the
// confirmation) the agent opens the device, which
// works only when it is orphaned like that, and feeds it until ctx ends. It closes it without the magic close: if
// osgate dies for good, the watchdog resets the machine, which in a try
// boot is a rollback; gokrazy restarts a crashed osgate within seconds,
// and the new process takes the device over.
func feedOrphanedWatchdog(ctx context.Context, dev string, log *slog.Logger) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	switch {
	case errors.Is(err, syscall.EBUSY):
		log.Debug("ota: the hardware watchdog is fed by gokrazy's init", "device", dev)
		return
	case err != nil:
		log.Debug("ota: no hardware watchdog to feed", "device", dev, "err", err)
		return
	}
	defer f.Close()
	log.Warn("ota: gokrazy's init does not feed the hardware watchdog in this boot (a try boot): the agent feeds it", "device", dev)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if _, err := f.Write([]byte{0}); err != nil {
			log.Warn("ota: feeding the hardware watchdog failed", "device", dev, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
