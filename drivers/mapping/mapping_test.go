package mapping

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

var arrival = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// render writes readings one per line, sorted, as "device/channel=value unit
// @time quality" so cases can state what they expect compactly.
func render(rs []core.Reading) string {
	lines := make([]string, len(rs))
	for i, r := range rs {
		s := fmt.Sprintf("%s/%s=%v(%T)", r.Device, r.Channel, r.Value, r.Value)
		if r.Unit != "" {
			s += " " + r.Unit
		}
		if !r.Time.Equal(arrival) {
			s += " @" + r.Time.Format(time.RFC3339Nano)
		}
		if r.Quality != core.Good {
			s += fmt.Sprintf(" %s: %v", r.Quality, r.Err)
		}
		lines[i] = s
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func strp(s string) *string { return &s }

func TestReadings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		filter  string
		spec    Spec
		opt     Options
		topic   string
		payload string
		want    string // rendered readings
		err     string // fragment of the error, if one is expected
	}{
		{
			name:   "captures and several channels from one JSON message",
			filter: "site/{site}/meter/{device}/state",
			spec: Spec{Device: "{site}-{device}", Channels: []ChannelSpec{
				{Name: "voltage_l1", Path: "voltage[0]", Unit: "V"},
				{Name: "voltage_l2", Path: "voltage[1]", Unit: "V"},
				{Name: "energy", Path: "energy.total", Unit: "kWh"},
				{Name: "on", Path: "relay", Type: Bool},
				{Name: "absent", Path: "nothere"},
			}},
			topic:   "site/north/meter/m7/state",
			payload: `{"voltage":[230.1,229.5],"energy":{"total":1234.5},"relay":"on"}`,
			want: "north-m7/energy=1234.5(float64) kWh\nnorth-m7/on=true(bool)\n" +
				"north-m7/voltage_l1=230.1(float64) V\nnorth-m7/voltage_l2=229.5(float64) V",
		},
		{
			name:    "channel name from a capture, plain number payload",
			filter:  "sensors/{device}/{channel}",
			spec:    Spec{Channels: []ChannelSpec{{Name: "{channel}"}}},
			topic:   "sensors/t1/temperature",
			payload: "21.5",
			want:    "t1/temperature=21.5(float64)",
		},
		{
			name:    "text payload: a string",
			filter:  "sensors/{device}/{channel}",
			spec:    Spec{Payload: "text", Channels: []ChannelSpec{{Name: "{channel}"}}},
			topic:   "sensors/door/state",
			payload: "open",
			want:    "door/state=open(string)",
		},
		{
			name:    "text payload: number and boolean guessed",
			filter:  "s/{device}",
			spec:    Spec{Payload: "text", Channels: []ChannelSpec{{Name: "v"}}},
			topic:   "s/a",
			payload: " 42 \n",
			want:    "a/v=42(float64)",
		},
		{
			name:    "text payload: boolean",
			filter:  "s/{device}",
			spec:    Spec{Payload: "text", Channels: []ChannelSpec{{Name: "v"}}},
			topic:   "s/a",
			payload: "true",
			want:    "a/v=true(bool)",
		},
		{
			name:    "text payload typed int that is not",
			filter:  "s/{device}",
			spec:    Spec{Payload: "text", Channels: []ChannelSpec{{Name: "v", Type: Int}}},
			topic:   "s/a",
			payload: "4.5",
			want:    `a/v=<nil>(<nil>) bad: field (the whole payload) "4.5" is not a whole number`,
		},
		{
			name:   "names from the payload and a unix_ms timestamp",
			filter: "gw/+/data",
			spec: Spec{Device: "{json:id}", Time: &TimeSpec{Path: "ts", Format: "unix_ms"},
				Channels: []ChannelSpec{{Name: "{json:kind}", Path: "value"}}},
			topic:   "gw/x/data",
			payload: `{"id":"meter-9","kind":"power","value":1500,"ts":1764072000123}`,
			want:    "meter-9/power=1500(float64) @2025-11-25T12:00:00.123Z",
		},
		{
			name:    "each member of an object, skipping the timestamp",
			filter:  "tele/{device}",
			spec:    Spec{Time: &TimeSpec{Path: "ts"}, Channels: []ChannelSpec{{Each: strp("")}}},
			topic:   "tele/m1",
			payload: `{"ts":"2026-11-24T13:41:00.5+01:00","a":1,"b":true,"c":"x","d":null,"e":{"x":1}}`,
			want: "m1/a=1(float64) @2026-11-24T12:41:00.5Z\nm1/b=true(bool) @2026-11-24T12:41:00.5Z\n" +
				"m1/c=x(string) @2026-11-24T12:41:00.5Z\n" +
				`m1/e=<nil>(<nil>) @2026-11-24T12:41:00.5Z bad: member "e" is an object, not a value`,
		},
		{
			name:    "each element of an array with a prefix",
			filter:  "arr/{device}",
			spec:    Spec{Channels: []ChannelSpec{{Each: strp("v"), Name: "ch{key}", Type: Int}}},
			topic:   "arr/d",
			payload: `{"v":[1,2.0,3.5]}`,
			want:    "d/ch0=1(int64)\nd/ch1=2(int64)\nd/ch2=<nil>(<nil>) bad: member \"2\" number 3.5 is not a whole number that fits in 64 bits",
		},
		{
			name:    "big integers stay exact as int",
			filter:  "i/{device}",
			spec:    Spec{Channels: []ChannelSpec{{Name: "n", Path: "n", Type: Int}, {Name: "s", Path: "n", Type: String}}},
			topic:   "i/d",
			payload: `{"n":9007199254740993}`,
			want:    "d/n=9007199254740993(int64)\nd/s=9007199254740993(string)",
		},
		{
			name:    "wrong kinds are bad readings, not errors",
			filter:  "w/{device}",
			spec:    Spec{Channels: []ChannelSpec{{Name: "a", Path: "a"}, {Name: "b", Path: "b", Type: Float}, {Name: "c", Path: "c", Type: Float}}},
			topic:   "w/d",
			payload: `{"a":[1],"b":"abc","c":"12.5"}`,
			want:    "d/a=<nil>(<nil>) bad: field a is an array, not a value\nd/b=<nil>(<nil>) bad: field b \"abc\" is not a number\nd/c=12.5(float64)",
		},
		{
			name:    "poll mode: absent field is bad",
			spec:    Spec{Channels: []ChannelSpec{{Name: "t", Path: "main.temp"}, {Name: "h", Path: "main.hum"}}},
			opt:     Options{Device: "weather", AbsentIsBad: true},
			payload: `{"main":{"temp":280.4}}`,
			want:    "weather/h=<nil>(<nil>) bad: field main.hum is not in the payload\nweather/t=280.4(float64)",
		},
		{
			name:   "Tasmota: a time without offset in the mapping's zone",
			filter: "tele/{device}/SENSOR",
			spec: Spec{Time: &TimeSpec{Path: "Time", Zone: "Europe/Berlin"}, Channels: []ChannelSpec{
				{Name: "voltage", Path: "ENERGY.Voltage", Unit: "V"}}},
			topic:   "tele/plug-1/SENSOR",
			payload: `{"Time":"2026-11-24T13:41:00","ENERGY":{"Voltage":230}}`,
			want:    "plug-1/voltage=230(float64) V @2026-11-24T12:41:00Z",
		},
		{
			name:    "summer time in the zone",
			filter:  "tele/{device}/SENSOR",
			spec:    Spec{Time: &TimeSpec{Path: "Time", Zone: "Europe/Berlin"}, Channels: []ChannelSpec{{Name: "v", Path: "v"}}},
			topic:   "tele/plug-1/SENSOR",
			payload: `{"Time":"2026-07-01T12:00:00.25","v":1}`,
			want:    "plug-1/v=1(float64) @2026-07-01T10:00:00.25Z",
		},
		{
			name:    "an offset in the timestamp wins over the zone",
			filter:  "t/{device}",
			spec:    Spec{Time: &TimeSpec{Path: "t", Zone: "Asia/Tokyo"}, Channels: []ChannelSpec{{Name: "v", Path: "v"}}},
			topic:   "t/d",
			payload: `{"t":"2026-11-24T13:41:00-05:00","v":1}`,
			want:    "d/v=1(float64) @2026-11-24T18:41:00Z",
		},
		{
			name:    "a layout without zone in the mapping's zone",
			filter:  "t/{device}",
			spec:    Spec{Time: &TimeSpec{Path: "t", Format: "02.01.2006 15:04", Zone: "America/New_York"}, Channels: []ChannelSpec{{Name: "v", Path: "v"}}},
			topic:   "t/d",
			payload: `{"t":"24.11.2026 13:41","v":1}`,
			want:    "d/v=1(float64) @2026-11-24T18:41:00Z",
		},
		{
			name:   "Zigbee2MQTT: a device name over several levels, units per member",
			filter: "zigbee2mqtt/{device...}",
			spec: Spec{Channels: []ChannelSpec{{Each: strp(""), Unit: "?",
				Units: map[string]string{"temperature": "°C", "humidity": "%", "linkquality": ""}}}},
			topic:   "zigbee2mqtt/floor1/living_room",
			payload: `{"temperature":21.5,"humidity":48,"linkquality":120,"battery":97}`,
			want: "floor1/living_room/battery=97(float64) ?\nfloor1/living_room/humidity=48(float64) %\n" +
				"floor1/living_room/linkquality=120(float64)\nfloor1/living_room/temperature=21.5(float64) °C",
		},
		{
			name:    "a member that does not convert keeps its unit",
			filter:  "z/{device...}",
			spec:    Spec{Channels: []ChannelSpec{{Each: strp(""), Type: Float, Units: map[string]string{"t": "°C"}}}},
			topic:   "z/a/b",
			payload: `{"t":"warm"}`,
			want:    `a/b/t=<nil>(<nil>) °C bad: member "t" "warm" is not a number`,
		},
		{name: "an RFC 3339 time without offset and no zone", filter: "x/{device}",
			spec:  Spec{Time: &TimeSpec{Path: "Time"}, Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":1,"Time":"2026-11-24T13:41:00"}`,
			err: `timestamp Time: "2026-11-24T13:41:00" has no zone offset: set the mapping's time.zone`},
		{name: "not JSON", filter: "x/{device}", spec: Spec{Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":`, err: "not JSON: unexpected end"},
		{name: "JSON syntax error offset", filter: "x/{device}", spec: Spec{Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":tru}`, err: "at byte"},
		{name: "two JSON values", filter: "x/{device}", spec: Spec{Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":1} {"a":2}`, err: "more than one value"},
		{name: "empty payload", filter: "x/{device}", spec: Spec{Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: ``, err: "payload is empty"},
		{name: "bad timestamp", filter: "x/{device}", spec: Spec{Time: &TimeSpec{Path: "ts"}, Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":1,"ts":"yesterday"}`, err: `"yesterday" is not rfc3339`},
		{name: "1970 timestamp", filter: "x/{device}", spec: Spec{Time: &TimeSpec{Path: "ts", Format: "unix"}, Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":1,"ts":12}`, err: "not between 2000 and 2200"},
		{name: "layout timestamp", filter: "x/{device}", spec: Spec{Time: &TimeSpec{Path: "t", Format: "2006-01-02 15:04:05"}, Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":1,"t":"2026-01-02 03:04:05"}`, want: "d/a=1(float64) @2026-01-02T03:04:05Z"},
		{name: "device name from missing field", filter: "x/+", spec: Spec{Device: "{json:id}", Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x/d", payload: `{"a":1}`, err: "field id is not in the payload"},
		{name: "empty device capture", filter: "x/{device}/y", spec: Spec{Channels: []ChannelSpec{{Name: "a", Path: "a"}}},
			topic: "x//y", payload: `{"a":1}`, err: "came out empty"},
		{name: "each over a number", filter: "x/{device}", spec: Spec{Channels: []ChannelSpec{{Each: strp("a")}}},
			topic: "x/d", payload: `{"a":1}`, err: "not an object or array"},
		{name: "text not UTF-8", filter: "x/{device}", spec: Spec{Payload: "text", Channels: []ChannelSpec{{Name: "a"}}},
			topic: "x/d", payload: "\xff\xfe", err: "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *Filter
			if tc.filter != "" {
				var err error
				if f, err = ParseFilter(tc.filter); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Compile(f, tc.spec, tc.opt)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			caps, ok := m.Match(tc.topic, nil)
			if !ok {
				t.Fatalf("%q does not match %q", tc.topic, tc.filter)
			}
			rs, err := m.Readings(caps, []byte(tc.payload), arrival, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrPayload) {
					t.Fatalf("err = %v, want ErrPayload containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Readings: %v", err)
			}
			if got := render(rs); got != tc.want {
				t.Errorf("readings:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	f, err := ParseFilter("a/{device}/{ch}")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(f, Spec{
		Device:  "{site}",
		Payload: "xml",
		Time:    &TimeSpec{Path: "", Format: "yyyy"},
		Channels: []ChannelSpec{
			{Path: "a"},
			{Name: "x", Path: "a..b"},
			{Name: "{key}", Path: "a"},
			{Name: "y", Each: strp("v"), Path: "w"},
			{Name: "{json:}", Path: "a"},
			{Name: "{unclosed", Path: "a"},
		},
	}, Options{})
	var es strict.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want strict.Errors", err)
	}
	want := map[string]string{
		"payload":          `must be "json" or "text"`,
		"device":           "{site} is not a capture of the topic (captures: {device}, {ch}",
		"time":             "must name a field",
		"channels[0].name": "is required",
		"channels[1].path": "a key is expected",
		"channels[2].name": "{key} names a member only in a channel with \"each\"",
		"channels[3].each": "and path exclude each other",
		"channels[4].name": "needs a path to a field",
		"channels[5].name": "is not closed",
	}
	got := map[string]string{}
	for _, e := range es {
		got[e.Path] = e.Msg
	}
	for p, frag := range want {
		if !strings.Contains(got[p], frag) {
			t.Errorf("%s: got %q, want it to contain %q", p, got[p], frag)
		}
	}
	if len(es) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}

	for _, tc := range []struct {
		spec Spec
		path string
		frag string
	}{
		{Spec{Device: "d", Time: &TimeSpec{Path: "t", Zone: "Europe/Berln"}, Channels: []ChannelSpec{{Name: "a"}}},
			"time", `zone "Europe/Berln" is not an IANA time zone name such as "Europe/Berlin" or "UTC"`},
		{Spec{Device: "d", Time: &TimeSpec{Path: "t", Zone: "Local"}, Channels: []ChannelSpec{{Name: "a"}}},
			"time", `zone "Local" depends on the machine osgate runs on`},
		{Spec{Device: "d", Time: &TimeSpec{Path: "t", Zone: "../../etc/passwd"}, Channels: []ChannelSpec{{Name: "a"}}},
			"time", "is not an IANA time zone name"},
		{Spec{Device: "d", Time: &TimeSpec{Path: "t", Format: "unix", Zone: "UTC"}, Channels: []ChannelSpec{{Name: "a"}}},
			"time", "a unix time counts from 1970-01-01 UTC and has no zone"},
		{Spec{Device: "d", Channels: []ChannelSpec{{Name: "a", Path: "a", Units: map[string]string{"a": "V"}}}},
			"channels[0].units", "needs each: a channel with path has one unit, set it with unit"},
	} {
		_, err := Compile(nil, tc.spec, Options{})
		var es strict.Errors
		if !errors.As(err, &es) || len(es) != 1 || es[0].Path != tc.path || !strings.Contains(es[0].Msg, tc.frag) {
			t.Errorf("Compile(%+v) = %v, want %s: …%s…", tc.spec, err, tc.path, tc.frag)
		}
	}

	_, err = Compile(nil, Spec{Channels: []ChannelSpec{{Name: "a"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "device: is required: the topic has no {device} capture") {
		t.Errorf("no device: %v", err)
	}
	_, err = Compile(nil, Spec{Device: "d"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "channels: must list at least one channel") {
		t.Errorf("no channels: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	devs := []*core.Device{
		{Name: "meter-1", Settings: []byte(`{"source":"m1"}`), Channels: []*core.Channel{
			{Name: "voltage", Unit: "V", Settings: []byte(`{"source":"u"}`)},
			{Name: "energy", Settings: []byte(`{}`)},
		}},
		{Name: "t2", Settings: []byte(`{}`)},
	}
	for _, only := range []bool{false, true} {
		c, err := NewCatalog(devs, only)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			in, out core.Reading
			keep    bool
		}{
			{core.Reading{Device: "m1", Channel: "u"}, core.Reading{Device: "meter-1", Channel: "voltage", Unit: "V"}, true},
			{core.Reading{Device: "m1", Channel: "energy", Unit: "kWh"}, core.Reading{Device: "meter-1", Channel: "energy", Unit: "kWh"}, true},
			{core.Reading{Device: "m1", Channel: "other"}, core.Reading{Device: "meter-1", Channel: "other"}, !only},
			{core.Reading{Device: "t2", Channel: "any"}, core.Reading{Device: "t2", Channel: "any"}, true},
			{core.Reading{Device: "new", Channel: "x"}, core.Reading{Device: "new", Channel: "x"}, !only},
			{core.Reading{Device: "meter-1", Channel: "x"}, core.Reading{Device: "meter-1", Channel: "x"}, !only},
		} {
			r := tc.in
			keep := c.Apply(&r)
			if keep != tc.keep || r.Device != tc.out.Device || r.Channel != tc.out.Channel || r.Unit != tc.out.Unit {
				t.Errorf("only=%v Apply(%v) = %v %+v, want %v %+v", only, tc.in, keep, r, tc.keep, tc.out)
			}
		}
	}
	_, err := NewCatalog([]*core.Device{
		{Name: "a", Settings: []byte(`{"source":"x","url":"http://"}`)},
		{Name: "b", Settings: []byte(`{"source":"x"}`), Channels: []*core.Channel{
			{Name: "c", Settings: []byte(`{"sourc":"q"}`)},
		}},
	}, false)
	if err == nil || !strings.Contains(err.Error(), "devices[0].url: unknown field") ||
		!strings.Contains(err.Error(), `devices[1]: device "b" has the same source "x" as device "a"`) {
		t.Errorf("catalog errors: %v", err)
	}
}
