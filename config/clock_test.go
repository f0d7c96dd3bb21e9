package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestClockDefaults: on the appliance (where /perm exists) osgate sets the
// clock and asks pool.ntp.org, then an RTC; elsewhere the operating system
// keeps the time.
func TestClockDefaults(t *testing.T) {
	withPerm(t, filepath.Join(t.TempDir(), "no-perm"))
	c, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if ck := c.Clock; *ck.SetSystem || !reflect.DeepEqual(ck.Sources, []string{"system"}) || ck.Hold != 2*time.Minute || ck.Interval != 15*time.Minute {
		t.Fatalf("host defaults %+v", ck)
	}
	withPerm(t, t.TempDir())
	if c, err = Parse([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if ck := c.Clock; !*ck.SetSystem || !reflect.DeepEqual(ck.Sources, []string{"ntp://pool.ntp.org", "rtc"}) {
		t.Fatalf("appliance defaults %+v", ck)
	}
	// What the file says wins.
	if c, err = Parse([]byte(`{"clock": {"sources": ["ntp://10.0.0.5"], "set_system": false, "hold": "30s"}}`)); err != nil {
		t.Fatal(err)
	}
	if ck := c.Clock; *ck.SetSystem || !reflect.DeepEqual(ck.Sources, []string{"ntp://10.0.0.5"}) || ck.Hold != 30*time.Second {
		t.Fatalf("set values %+v", ck)
	}
}

func TestClockErrors(t *testing.T) {
	withPerm(t, filepath.Join(t.TempDir(), "no-perm"))
	for doc, want := range map[string]string{
		`{"clock": {"sources": ["pool.ntp.org"]}}`:               `clock.sources[0]: "pool.ntp.org" is not a time source`,
		`{"clock": {"sources": ["ntp://a", "ntp://a"]}}`:         `clock.sources[1]: "ntp://a" is listed twice`,
		`{"clock": {"sources": ["system"], "set_system": true}}`: `clock.sources[0]: "system" means the operating system keeps the time`,
		`{"clock": {"sources": ["remote"]}}`:                     `clock.sources[0]: "remote" is the Date of the fleet server, but there is no remote block`,
		`{"clock": {"sources": ["http://fleet/x"]}}`:             `vouched for by nobody`,
		`{"clock": {"hold": "-1s"}}`:                             `clock.hold: must not be negative`,
		`{"clock": {"interval": "10s"}}`:                         `clock.interval: at least "1m"`,
		`{"clock": {"sources": ["rtc:/etc/shadow"]}}`:            `/dev/rtcN`,
		`{"clock": {"sorces": ["rtc"]}}`:                         `clock.sorces`,
		`{"remote": {"url": "http://fleet/x.json", "public_key": "` + testPub + `"}, "clock": {"sources": ["remote"]}}`: `"remote" needs an https:// remote.url`,
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v\nwant an error with %s", doc, err, want)
		}
	}
	long := make([]string, 17)
	for i := range long {
		long[i] = `"ntp://h` + string(rune('a'+i)) + `"`
	}
	if _, err := Parse([]byte(`{"clock": {"sources": [` + strings.Join(long, ",") + `]}}`)); err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Errorf("17 sources: %v", err)
	}
	if _, err := Parse([]byte(`{"remote": {"url": "https://fleet/x.json"}, "clock": {"sources": ["ntp://10.0.0.5", "remote", "rtc"], "set_system": true}}`)); err != nil {
		t.Errorf("a plant's sources refused: %v", err)
	}
}

// TestPulledCannotChangeTheClock: the clock is the local file's; a pulled
// document may repeat it, or leave it out and get the local one.
func TestPulledCannotChangeTheClock(t *testing.T) {
	boot := `{"gateway": {"id": "gw-1"}, "clock": {"sources": ["ntp://10.0.0.5"], "set_system": true}}`
	parse := ParsePulled([]byte(boot))
	_, err := parse([]byte(`{"gateway": {"id": "gw-1"}, "clock": {"sources": ["ntp://evil.example"], "set_system": true}}`))
	if err == nil || !strings.Contains(err.Error(), "clock: says where the gateway's time comes from") {
		t.Fatalf("a pulled clock: %v", err)
	}
	c, err := parse([]byte(`{"gateway": {"id": "gw-1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Clock.Sources, []string{"ntp://10.0.0.5"}) || !*c.Clock.SetSystem {
		t.Fatalf("clock not taken from the bootstrap: %+v", c.Clock)
	}
	if _, err := parse([]byte(`{"gateway": {"id": "gw-1"}, "clock": {"sources": ["ntp://10.0.0.5"], "set_system": true}}`)); err != nil {
		t.Fatalf("a pulled document repeating the clock: %v", err)
	}
}
