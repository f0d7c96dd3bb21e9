// Package topic names the MQTT topics on which osgate reports the state of
// a gateway and its devices (docs/status.md), for the export, the managed
// broker's bridge and config validation alike, and matches topics against
// MQTT filters.
//
//	status/{gateway}                   the gateway's status document (its will says "offline")
//	status/{gateway}/bridge            "1" / "0": the bridge's connection to the cloud (Mosquitto's notification, with its will "0")
//	status/{gateway}/devices/{device}  one device's status document
//
// Gateway ids and device names are single topic levels (config validation
// refuses "/", "+", "#" and NUL in them), so they are used as they are.
package topic

import "strings"

// GatewayStatus is the topic of the gateway's own status document.
func GatewayStatus(gateway string) string { return "status/" + gateway }

// BridgeStatus is where the managed broker's bridge reports its connection
// to the cloud: "1" when up; "0" when it drops, which the cloud broker
// publishes as the bridge's will.
func BridgeStatus(gateway string) string { return GatewayStatus(gateway) + "/bridge" }

// DeviceStatus is the topic of one device's status document.
func DeviceStatus(gateway, device string) string {
	return GatewayStatus(gateway) + "/devices/" + device
}

// DeviceStatusFilter matches every device status topic of a gateway.
func DeviceStatusFilter(gateway string) string { return GatewayStatus(gateway) + "/devices/#" }

// Matches reports whether the MQTT filter matches topic: "+" is one level,
// a final "#" the rest (the parent level included), and wildcards at the
// first level do not match topics that start with "$".
func Matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			return true
		case i >= len(ts):
			return false
		case f != "+" && f != ts[i]:
			return false
		}
	}
	return len(fs) == len(ts)
}
