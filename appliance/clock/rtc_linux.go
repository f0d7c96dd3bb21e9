package clock

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// readRTC reads a real-time clock device, which keeps UTC.
func readRTC(dev string) (time.Time, error) {
	f, err := os.Open(dev)
	if err != nil {
		return time.Time{}, fmt.Errorf("rtc: %w", err)
	}
	defer f.Close()
	rt, err := unix.IoctlGetRTCTime(int(f.Fd()))
	if err != nil {
		return time.Time{}, fmt.Errorf("rtc %s: read (RTC_RD_TIME): %w (an RTC that was never set, or lost its battery, reads as invalid)", dev, err)
	}
	t, err := rtcTime(rtcFields{Year: int(rt.Year), Mon: int(rt.Mon), Mday: int(rt.Mday), Hour: int(rt.Hour), Min: int(rt.Min), Sec: int(rt.Sec)})
	if err != nil {
		return time.Time{}, fmt.Errorf("rtc %s: %w", dev, err)
	}
	return t, nil
}

// writeRTC sets a real-time clock device to t (UTC, whole seconds).
func writeRTC(dev string, t time.Time) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("rtc: %w", err)
	}
	defer f.Close()
	u := t.UTC().Add(500 * time.Millisecond) // to the nearest second
	rt := unix.RTCTime{Sec: int32(u.Second()), Min: int32(u.Minute()), Hour: int32(u.Hour()),
		Mday: int32(u.Day()), Mon: int32(u.Month()) - 1, Year: int32(u.Year() - 1900)}
	if err := unix.IoctlSetRTCTime(int(f.Fd()), &rt); err != nil {
		return fmt.Errorf("rtc %s: write (RTC_SET_TIME): %w", dev, err)
	}
	return nil
}
