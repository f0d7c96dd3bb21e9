package clock

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// osSystem is the operating system's clock.
type osSystem struct{}

func (osSystem) Now() time.Time { return time.Now() }

// Step sets the system clock (settimeofday; needs CAP_SYS_TIME).
func (osSystem) Step(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("settimeofday: %w", err)
	}
	return nil
}

// Slew makes the kernel run the clock slightly faster or slower until d
// is made up (adjtime), so time never jumps for a small correction.
func (osSystem) Slew(d time.Duration) error {
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT}
	setOffset(&tx.Offset, d.Microseconds())
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex: %w", err)
	}
	return nil
}

// setOffset stores us in Timex.Offset, a C long: 32 bits on 32-bit ARM.
// Slews are far below the ±35 minutes that fit there; a larger offset is
// clamped.
func setOffset[T int32 | int64](p *T, us int64) {
	const limit = 1<<31 - 1
	*p = T(max(-limit, min(limit, us)))
}

// Boot is the kernel's id of this boot and the time since it began,
// suspend included (CLOCK_BOOTTIME): two marks with the same id are
// apart by exactly the difference of their times, whatever the wall
// clock did in between.
func (osSystem) Boot() (string, time.Duration) {
	id := ""
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		id = strings.TrimSpace(string(b))
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return "", 0
	}
	return id, time.Duration(ts.Nano())
}
