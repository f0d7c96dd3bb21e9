package topic

import "testing"

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		GatewayStatus("gw-1"):           "status/gw-1",
		BridgeStatus("gw-1"):            "status/gw-1/bridge",
		DeviceStatus("gw-1", "meter-7"): "status/gw-1/devices/meter-7",
		DeviceStatusFilter("gw-1"):      "status/gw-1/devices/#",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"#", "status/gw/bridge", true},
		{"status/#", "status/gw/bridge", true},
		{"status/gw/#", "status/gw", true},
		{"status/+", "status/gw", true},
		{"status/+", "status/gw/bridge", false},
		{"status/+/bridge", "status/gw/bridge", true},
		{"status/gw/devices/#", "status/gw/bridge", false},
		{"status/gw", "status/gw/bridge", false},
		{"telemetry/#", "status/gw/bridge", false},
		{"+/gw/bridge", "status/gw/bridge", true},
		{"#", "$SYS/broker/connection/x/state", false},
		{"+/broker/#", "$SYS/broker/x", false},
		{"$SYS/#", "$SYS/broker/x", true},
		{"a/+/c", "a//c", true},
		{"a/b", "a/b/", false},
	} {
		if got := Matches(c.filter, c.topic); got != c.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}
