// Package timesource reads the entries of the clock block's sources
// (clock.sources), for the configuration's checks and for the clock that
// asks them; it also holds the block's defaults.
package timesource

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Kind is what a time source is.
type Kind string

const (
	// NTP is an NTP server, asked with SNTP (RFC 4330) over UDP.
	NTP Kind = "ntp"
	// HTTPS is the Date header of an HTTPS server, trusted when the
	// server's certificate is valid at that date.
	HTTPS Kind = "https"
	// Remote is the HTTPS Date of the fleet config server (remote.url).
	Remote Kind = "remote"
	// RTC is a battery-backed real-time clock (/dev/rtc0, or the board
	// profile's).
	RTC Kind = "rtc"
	// System means the operating system keeps the time (systemd-timesyncd,
	// chrony): the clock counts as right once it is past the build time.
	System Kind = "system"
)

// Source is one parsed entry of clock.sources.
type Source struct {
	Kind Kind
	// Addr is an NTP server's host:port.
	Addr string
	// URL is an HTTPS source's URL.
	URL string
	// Device is an RTC's device path ("" for the default).
	Device string
	text   string
}

func (s Source) String() string { return s.text }

// Defaults of the clock block.
const (
	DefaultHold     = 2 * time.Minute
	DefaultInterval = 15 * time.Minute
	// DefaultNTP is the NTP server the appliance asks when the config
	// names no time source.
	DefaultNTP = "ntp://pool.ntp.org"
)

// DefaultNTPPort is where an NTP server answers.
const DefaultNTPPort = "123"

var rtcDevice = regexp.MustCompile(`^/dev/rtc[0-9]{0,3}$`)

// ParseSource reads one entry of clock.sources:
//
//	ntp://HOST[:PORT]   an NTP server by address or name (port 123)
//	https://HOST/PATH   the Date header of an HTTPS server
//	remote              the Date header of the fleet config server (remote.url)
//	rtc[:/dev/rtcN]     a battery-backed real-time clock (default /dev/rtc0)
//	system              the operating system keeps the time
func ParseSource(s string) (Source, error) {
	src := Source{text: s}
	switch {
	case s == string(Remote):
		src.Kind = Remote
		return src, nil
	case s == string(System):
		src.Kind = System
		return src, nil
	case s == string(RTC):
		src.Kind = RTC
		return src, nil
	case strings.HasPrefix(s, "rtc:"):
		src.Kind, src.Device = RTC, strings.TrimPrefix(s, "rtc:")
		if !rtcDevice.MatchString(src.Device) {
			return src, fmt.Errorf("%q: an RTC is a device /dev/rtcN, not %q", s, src.Device)
		}
		return src, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return src, fmt.Errorf("%q is not a time source: use ntp://HOST, https://HOST/PATH, remote, rtc or system", s)
	}
	if u.User != nil {
		return src, fmt.Errorf("%q: a time source carries no user or password", s)
	}
	switch u.Scheme {
	case "ntp":
		if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return src, fmt.Errorf("%q: an NTP source is ntp://HOST or ntp://HOST:PORT, nothing more", s)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = DefaultNTPPort
		}
		if host == "" {
			return src, fmt.Errorf("%q: no host", s)
		}
		if err := checkPort(port); err != nil {
			return src, fmt.Errorf("%q: %w", s, err)
		}
		src.Kind, src.Addr = NTP, net.JoinHostPort(host, port)
		return src, nil
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return src, fmt.Errorf("%q: no host", s)
		}
		if p := u.Port(); p != "" {
			if err := checkPort(p); err != nil {
				return src, fmt.Errorf("%q: %w", s, err)
			}
		}
		src.Kind, src.URL = HTTPS, s
		return src, nil
	case "http":
		return src, fmt.Errorf("%q: the Date of a plain http:// server is vouched for by nobody; use https:// or an NTP server", s)
	}
	return src, fmt.Errorf("%q: unknown kind %q: use ntp://HOST, https://HOST/PATH, remote, rtc or system", s, u.Scheme)
}

func checkPort(p string) error {
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' || n > 65535 {
			return errors.New("port must be a number from 1 to 65535")
		}
		n = n*10 + int(r-'0')
	}
	if n < 1 || n > 65535 {
		return errors.New("port must be a number from 1 to 65535")
	}
	return nil
}
