package clock

import (
	"fmt"
	"time"
)

// rtcFields is struct rtc_time as the kernel returns it: years since
// 1900, months from 0.
type rtcFields struct {
	Year, Mon, Mday, Hour, Min, Sec int
}

// rtcTime converts what an RTC says, refusing dates that do not exist
// (a chip that lost its battery can return garbage).
func rtcTime(f rtcFields) (time.Time, error) {
	if f.Mon < 0 || f.Mon > 11 || f.Mday < 1 || f.Mday > 31 || f.Hour < 0 || f.Hour > 23 ||
		f.Min < 0 || f.Min > 59 || f.Sec < 0 || f.Sec > 60 || f.Year < 70 || f.Year > 1100 {
		return time.Time{}, fmt.Errorf("reads an impossible date (%+v)", f)
	}
	t := time.Date(f.Year+1900, time.Month(f.Mon+1), f.Mday, f.Hour, f.Min, f.Sec, 0, time.UTC)
	if t.Day() != f.Mday {
		return time.Time{}, fmt.Errorf("reads an impossible date (%04d-%02d-%02d)", f.Year+1900, f.Mon+1, f.Mday)
	}
	// The chip counts whole seconds: the true time is on average half a
	// second later than it says.
	return t.Add(500 * time.Millisecond), nil
}
