package system

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

func cfg(devs ...*core.Device) core.ConnectorConfig {
	return core.ConnectorConfig{Name: "system", Type: "system", Settings: json.RawMessage(`{}`), Devices: devs, StateDir: os.TempDir()}
}

// TestPollThisMachine reads the machine the test runs on: every channel
// but the SoC temperature must be good (a VM may have no thermal zone).
func TestPollThisMachine(t *testing.T) {
	dev := &core.Device{Name: "gw", Settings: json.RawMessage(`{}`)}
	c, err := New(cfg(dev))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.(core.Poller).Poll(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	// Every channel, but the SoC temperature only where the machine has one.
	_, thermal := os.Stat("/sys/class/thermal/thermal_zone0")
	if want := len(channels) - map[bool]int{true: 1}[thermal != nil]; len(rs) != want {
		t.Fatalf("got %d readings, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.Device != "gw" || r.Time.IsZero() {
			t.Errorf("%s: bad envelope %+v", r.Channel, r)
		}
		if r.Channel == "soc_temperature" {
			continue
		}
		if r.Quality != core.Good {
			t.Errorf("%s: quality %v: %v", r.Channel, r.Quality, r.Err)
			continue
		}
		switch v := r.Value.(type) {
		case float64:
			if v < 0 {
				t.Errorf("%s = %v", r.Channel, v)
			}
			if r.Unit == "%" && v > 100 {
				t.Errorf("%s = %v %%", r.Channel, v)
			}
		case int64:
			if v <= 0 {
				t.Errorf("%s = %v", r.Channel, v)
			}
		default:
			t.Errorf("%s: value %T", r.Channel, r.Value)
		}
	}
}

// TestFakeRoot reads /proc and /sys files written by the test: the values
// must be exactly what the files say, including the thermal zone the Pi has.
func TestFakeRoot(t *testing.T) {
	root := t.TempDir()
	write := func(rel, s string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/loadavg", "0.75 0.50 0.25 1/100 1234\n")
	write("proc/meminfo", "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n")
	write("proc/uptime", "3600.50 7000.00\n")
	write("proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n")
	write("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
	write("sys/class/thermal/thermal_zone0/temp", "48312\n")
	dev := &core.Device{Name: "gw", Settings: json.RawMessage(`{}`)}
	c, err := New(cfg(dev))
	if err != nil {
		t.Fatal(err)
	}
	c.(*connector).root = root
	rs, err := c.(core.Poller).Poll(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cpu_load_1m": 0.75, "cpu_usage": 20.0, "memory_used": 75.0, "memory_available": int64(256000),
		"uptime": 3600.5, "soc_temperature": 48.312,
	}
	for _, r := range rs {
		w, ok := want[r.Channel]
		if !ok {
			continue
		}
		if r.Value != w {
			t.Errorf("%s = %v (%T), want %v", r.Channel, r.Value, r.Value, w)
		}
		delete(want, r.Channel)
	}
	if len(want) != 0 {
		t.Errorf("missing channels: %v", want)
	}
	// A second poll measures CPU use since the first.
	write("proc/stat", "cpu  150 0 150 850 0 0 0 0 0 0\n")
	rs, _ = c.(core.Poller).Poll(context.Background(), dev)
	for _, r := range rs {
		if r.Channel == "cpu_usage" && r.Value != 66.67 {
			t.Errorf("cpu_usage after delta = %v, want 66.67", r.Value)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dev := &core.Device{Name: "gw", Settings: json.RawMessage(`{"paht":"/"}`), Channels: []*core.Channel{
		{Name: "uptime", Settings: json.RawMessage(`{}`)},
		{Name: "fan_speed", Settings: json.RawMessage(`{}`)},
		{Name: "disk_used", Writable: true, Settings: json.RawMessage(`{"register":1}`)},
	}}
	_, err := New(cfg(dev))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`devices[0].paht: unknown field (did you mean "path"?)`,
		`devices[0].channels[1].name: unknown system channel "fan_speed"`,
		`devices[0].channels[2].writable: system channels are read-only`,
		`devices[0].channels[2].register: unknown field`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestAbsentSensor: a channel the config names explicitly is reported Bad
// where the machine lacks it, rather than silently missing.
func TestAbsentSensor(t *testing.T) {
	dev := &core.Device{Name: "gw", Channels: []*core.Channel{{Name: "soc_temperature"}}}
	c, err := New(cfg(dev))
	if err != nil {
		t.Fatal(err)
	}
	c.(*connector).root = t.TempDir()
	rs, err := c.(core.Poller).Poll(context.Background(), dev)
	if err != nil || len(rs) != 1 || rs[0].Quality != core.Bad || rs[0].Err == nil {
		t.Fatalf("readings %+v, err %v", rs, err)
	}
}

func TestConfiguredChannelsOnly(t *testing.T) {
	dev := &core.Device{Name: "gw", Settings: json.RawMessage(`{}`), Channels: []*core.Channel{{Name: "uptime"}, {Name: "memory_used"}}}
	c, err := New(cfg(dev))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.(core.Poller).Poll(context.Background(), dev)
	if err != nil || len(rs) != 2 || rs[0].Channel != "uptime" || rs[1].Channel != "memory_used" {
		t.Fatalf("readings %+v, err %v", rs, err)
	}
}
