package mapping

import (
	"slices"
	"strings"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		ok            bool
		caps          []string
	}{
		{"site/{site}/meter/{device}/+", "site/a/meter/m7/power", true, []string{"a", "m7"}},
		{"site/{site}/meter/{device}/+", "site/a/meter/m7", false, nil},
		{"site/{site}/meter/{device}/+", "site/a/meter/m7/power/x", false, nil},
		{"site/{site}/meter/{device}/+", "site/a/other/m7/power", false, nil},
		{"a/#", "a", true, nil},
		{"a/#", "a/b/c", true, nil},
		{"a/#", "b/a", false, nil},
		{"#", "anything/at/all", true, nil},
		{"#", "$SYS/broker/load", false, nil},
		{"+/x", "$SYS/x", false, nil},
		{"{d}/x", "$SYS/x", false, nil},
		{"$SYS/#", "$SYS/broker", true, nil},
		{"a/+/c", "a//c", true, nil},
		{"a/{d}/c", "a//c", true, []string{""}},
		{"a/b", "a/b", true, nil},
		{"a/b", "a/b/", false, nil},
		{"{x}/{y}/#", "1/2/3/4", true, []string{"1", "2"}},
		{"{x}", "1/2", false, nil},
		// A capture spanning levels (Zigbee2MQTT's friendly names).
		{"zigbee2mqtt/{device...}", "zigbee2mqtt/floor1/living_room", true, []string{"floor1/living_room"}},
		{"zigbee2mqtt/{device...}", "zigbee2mqtt/lamp", true, []string{"lamp"}},
		{"zigbee2mqtt/{device...}", "zigbee2mqtt", false, nil},
		{"z/{device...}/availability", "z/floor1/living_room/availability", true, []string{"floor1/living_room"}},
		{"z/{device...}/availability", "z/availability", false, nil},
		{"z/{device...}/availability", "z/a/b/state", false, nil},
		{"{site}/{device...}/+/{ch}", "s1/a/b/c/x/temp", true, []string{"s1", "a/b/c", "temp"}},
		{"{device...}", "$SYS/broker", false, nil},
		{"$SYS/{path...}", "$SYS/broker/load", true, []string{"broker/load"}},
		{"a/{d...}/b", "a//b", true, []string{""}},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
		}
		caps, ok := f.Match(tc.topic, nil)
		if ok != tc.ok {
			t.Errorf("%q matching %q = %v, want %v", tc.filter, tc.topic, ok, tc.ok)
			continue
		}
		if ok && len(tc.caps) > 0 && !slices.Equal(caps, tc.caps) {
			t.Errorf("%q matching %q captured %q, want %q", tc.filter, tc.topic, caps, tc.caps)
		}
	}
}

func TestFilterSubscription(t *testing.T) {
	for filter, want := range map[string]string{
		"site/{site}/meter/{device}/+": "site/+/meter/+/+",
		"{a}/#":                        "+/#",
		"plain/topic":                  "plain/topic",
		"#":                            "#",
		"zigbee2mqtt/{device...}":      "zigbee2mqtt/#",
		"z/{site}/{device...}/set":     "z/+/#",
		"{device...}/x":                "#",
	} {
		f, err := ParseFilter(filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Subscription(); got != want {
			t.Errorf("Subscription(%q) = %q, want %q", filter, got, want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for filter, frag := range map[string]string{
		"":              "must not be empty",
		"a/#/b":         "only be the last level",
		"a+/b":          "whole level",
		"a/b#":          "whole level",
		"a/{x}y":        "must fill a whole level",
		"a/{1x}":        "a name is letters",
		"{d}/{d}":       "appears twice",
		"a/{}":          "whole level",
		"a/\x00":        "NUL",
		"{a-b}/c":       "a name is letters",
		"x/{dev}ice/y":  "whole level",
		"{a...}/{b...}": "only one capture may span levels",
		"{a...}/#":      "leaves it unclear where the capture ends",
		"a/{...}":       "a name is letters",
		"a/{b..}":       "a name is letters",
	} {
		_, err := ParseFilter(filter)
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParseFilter(%q) = %v, want an error containing %q", filter, err, frag)
		}
	}
}
