package timesource

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	for in, want := range map[string]Source{
		"ntp://10.0.0.5":          {Kind: NTP, Addr: "10.0.0.5:123"},
		"ntp://ntp.plant.local":   {Kind: NTP, Addr: "ntp.plant.local:123"},
		"ntp://[fd00::1]:1123":    {Kind: NTP, Addr: "[fd00::1]:1123"},
		"https://fleet.example/x": {Kind: HTTPS, URL: "https://fleet.example/x"},
		"remote":                  {Kind: Remote},
		"rtc":                     {Kind: RTC},
		"rtc:/dev/rtc1":           {Kind: RTC, Device: "/dev/rtc1"},
		"system":                  {Kind: System},
	} {
		got, err := ParseSource(in)
		want.text = in
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseSource(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"pool.ntp.org":              "not a time source",
		"ntp://":                    "ntp://HOST",
		"ntp://h:0":                 "port",
		"ntp://h:99999":             "port",
		"ntp://h/path":              "nothing more",
		"ntp://user:pw@h":           "no user",
		"http://fleet.example/":     "vouched for by nobody",
		"https://":                  "no host",
		"rtc:/etc/passwd":           "/dev/rtcN",
		"gps://x":                   "unknown kind",
		"ntp://h:12a":               "not a time source",
		"https://fleet.example:0/x": "port",
	} {
		if _, err := ParseSource(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSource(%q) = %v, want an error with %q", in, err, want)
		}
	}
}
