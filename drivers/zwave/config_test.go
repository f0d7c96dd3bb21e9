package zwave

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

func cfgWith(settings string, devs ...*core.Device) core.ConnectorConfig {
	return core.ConnectorConfig{Name: "zw", Type: "zwave", Settings: json.RawMessage(settings), Devices: devs}
}

func devJSON(name, settings string, channels ...*core.Channel) *core.Device {
	return &core.Device{Name: name, Interval: time.Minute, Settings: json.RawMessage(settings), Channels: channels}
}

func TestRegistered(t *testing.T) {
	f, ok := core.Lookup("zwave")
	if !ok {
		t.Fatal(`connector type "zwave" is not registered`)
	}
	c, err := f(cfgWith(`{"port":"/dev/does-not-exist"}`, devJSON("relay", `{"node_id":4}`, &core.Channel{Name: "switch", Writable: true})))
	if err != nil {
		t.Fatalf("New with a missing port (New must not open it): %v", err)
	}
	defer c.Close()
	for _, iface := range []string{"Poller", "Listener", "Writer", "Commander"} {
		var ok bool
		switch iface {
		case "Poller":
			_, ok = c.(core.Poller)
		case "Listener":
			_, ok = c.(core.Listener)
		case "Writer":
			_, ok = c.(core.Writer)
		case "Commander":
			_, ok = c.(core.Commander)
		}
		if !ok {
			t.Errorf("the connector is not a core.%s", iface)
		}
	}
	// The first use opens the port and says which.
	_, err = c.(core.Poller).Poll(context.Background(), devJSON("relay", `{"node_id":4}`))
	if err == nil || !strings.Contains(err.Error(), "/dev/does-not-exist") {
		t.Fatalf("poll with a missing port: %v", err)
	}
	if _, err := c.(core.Poller).Poll(context.Background(), devJSON("other", `{}`)); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("poll of an unknown device: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name     string
		cfg      core.ConnectorConfig
		wantPath string
		wantMsg  string
	}{
		{"missing port", cfgWith(`{}`), "settings.port", "required"},
		{"misspelt key", cfgWith(`{"port":"auto","sofreset":false}`), "settings.sofreset", "soft_reset"},
		{"bad duration", cfgWith(`{"port":"auto","report_timeout":"soon"}`), "settings.report_timeout", ""},
		{"negative timeout", cfgWith(`{"port":"auto","report_timeout":"-1s"}`), "settings.report_timeout", "positive"},
		{"missing node id", cfgWith(`{"port":"auto"}`, devJSON("a", `{}`)), "devices[0].node_id", "required"},
		{"node id of the stick", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":1}`)), "devices[0].node_id", "2..232"},
		{"node id too big", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":300}`)), "devices[0].node_id", "2..232"},
		{"duplicate node", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":4}`), devJSON("b", `{"node_id":4}`)), "devices[1].node_id", `device "a"`},
		{"unknown device key", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":4,"addr":3}`)), "devices[0].addr", "unknown"},
		{"unknown channel", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":4}`, &core.Channel{Name: "temperature"})), "devices[0].channels[0].name", "air_temperature"},
		{"read-only channel writable", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":4}`, &core.Channel{Name: "electric_kwh", Writable: true})), "devices[0].channels[0].writable", "cannot be written"},
		{"channel settings", cfgWith(`{"port":"auto"}`, devJSON("a", `{"node_id":4}`, &core.Channel{Name: "switch", Settings: json.RawMessage(`{"register":1}`)})), "devices[0].channels[0].register", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			var es strict.Errors
			if !errors.As(err, &es) {
				t.Fatalf("New: %v, want strict.Errors", err)
			}
			for _, e := range es {
				if e.Path == c.wantPath && strings.Contains(e.Msg, c.wantMsg) {
					return
				}
			}
			t.Fatalf("errors %q, want one at %s containing %q", err, c.wantPath, c.wantMsg)
		})
	}
}

func TestSetCommands(t *testing.T) {
	cases := []struct {
		channel string
		v       any
		want    []byte
		err     string
	}{
		{"switch", true, []byte{0x25, 0x01, 0xFF}, ""},
		{"switch", false, []byte{0x25, 0x01, 0x00}, ""},
		{"switch", int64(1), []byte{0x25, 0x01, 0xFF}, ""},
		{"switch", "off", []byte{0x25, 0x01, 0x00}, ""},
		{"switch", "maybe", nil, "must be a bool"},
		{"lock", true, []byte{0x62, 0x01, 0xFF}, ""},
		{"lock", "off", []byte{0x62, 0x01, 0x00}, ""},
		{"lock", int64(7), []byte{0x62, 0x01, 0xFF}, ""},
		{"lock", "open sesame", nil, "lock: value must be a bool"},
		{"level", int64(42), []byte{0x26, 0x01, 42}, ""},
		{"level", 41.6, []byte{0x26, 0x01, 42}, ""},
		{"level", true, []byte{0x26, 0x01, 0xFF}, ""},
		{"level", int64(100), nil, "out of range"},
		{"level", "half", nil, "must be a number"},
		{"basic", int64(0), []byte{0x20, 0x01, 0x00}, ""},
		{"switch_ep2", true, []byte{0x25, 0x01, 0xFF}, ""}, // Multi Channel: def.ep, see TestLookupChannel
		{"level_ep127", int64(5), []byte{0x26, 0x01, 0x05}, ""},
		{"level_ep3", int64(100), nil, "out of range"},
	}
	for _, c := range cases {
		def, ok := lookupChannel(c.channel)
		if !ok || def.set == nil {
			t.Fatalf("channel %s is not writable", c.channel)
		}
		got, err := def.set(c.v)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s=%v: error %v, want %q", c.channel, c.v, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != string(c.want) {
			t.Errorf("%s=%v: % X, %v; want % X", c.channel, c.v, got, err, c.want)
		}
	}
}

func TestLookupChannel(t *testing.T) {
	for name, get := range map[string]string{
		"air_temperature":     "31 04 01 00",
		"electric_kwh":        "32 01 00",
		"electric_w":          "32 01 10",
		"electric_kvar":       "32 01 38 00",
		"electric_w_produced": "32 01 90",
		"gas_m3":              "32 01 00",
		"switch_ep2":          "25 02",
		"battery_low":         "80 02",
		"binary_motion":       "30 02 0C",
		"lock":                "62 02",
	} {
		def, ok := lookupChannel(name)
		if !ok || string(def.get) != string(unhex(t, get)) {
			t.Errorf("%s: get % X, %v; want %s", name, def.get, ok, get)
		}
	}
	for name, ep := range map[string]byte{"switch": 0, "switch_ep2": 2, "level_ep127": 127} {
		if def, _ := lookupChannel(name); def.ep != ep {
			t.Errorf("%s: endpoint %d, want %d", name, def.ep, ep)
		}
	}
	for _, bad := range []string{"temperature", "switch_ep0", "switch_ep128", "switch_ep02", "switch_ep+2", "switch_ep", "nothing_ep2", "_ep2"} {
		if _, ok := lookupChannel(bad); ok {
			t.Errorf("%q was accepted", bad)
		}
	}
	if def, _ := lookupChannel("electric_kwh_ep1"); def.set != nil {
		t.Error("a meter on an endpoint is writable")
	}
}

func TestParseInitDataAndNIF(t *testing.T) {
	// Version 9, capabilities, 29 bytes of node bitmask (nodes 1-5 and 7),
	// chip type and version.
	d := append([]byte{0x09, 0x08, 29, 0x5F}, make([]byte, 28)...)
	d = append(d, 0x07, 0x00)
	nodes, err := parseInitData(d)
	if err != nil || string(nodes) != string([]byte{1, 2, 3, 4, 5, 7}) {
		t.Fatalf("nodes %v, %v", nodes, err)
	}
	if _, err := parseInitData([]byte{0x09, 0x08, 29, 0x01}); err == nil {
		t.Fatal("short bitmask accepted")
	}
	id, info, err := parseNIF([]byte{0x84, 0x06, 0x06, 0x04, 0x10, 0x01, 0x25, 0xEF, 0x20})
	if err != nil || id != 6 || info.Generic != 0x10 || string(info.CCs) != "\x25" {
		t.Fatalf("NIF: %d %+v %v", id, info, err)
	}
	if _, _, err := parseNIF([]byte{0x84, 0x06, 0x09, 0x04}); err == nil {
		t.Fatal("truncated NIF accepted")
	}
}
