package board

import (
	"fmt"
	"strings"

	"go.bug.st/serial/enumerator"
)

// zwaveStick is a USB Z-Wave stick known by its vendor and product id.
// Generic ids belong to USB-serial bridge chips that other devices use too
// (Zigbee sticks, RS-485 adapters): they count only when nothing better
// matches and only when they are alone.
type zwaveStick struct {
	vid, pid string
	name     string
	generic  bool
}

// zwaveSticks lists the ids from vendor documentation and public device
// lists; they are not verified on hardware by osgate's tests.
var zwaveSticks = []zwaveStick{
	{vid: "0658", pid: "0200", name: "Sigma Designs ZW0x00 (Aeotec Z-Stick Gen5/Gen5+, Z-Wave.Me UZB1, Zooz ZST10 500)"},
	{vid: "0658", pid: "0280", name: "Silicon Labs UZB-7 (700 series)"},
	{vid: "10c4", pid: "8a2a", name: "Nortek HUSBZB-1 (Z-Wave and Zigbee)"},
	{vid: "10c4", pid: "ea60", name: "Silicon Labs CP210x (Zooz ZST10 700, Aeotec Z-Stick 7)", generic: true},
	{vid: "1a86", pid: "55d4", name: "WCH CH9102 (Zooz ZST39 800, HomeSeer SmartStick G8)", generic: true},
}

// FindZWaveStick finds the serial port of the Z-Wave stick, so that config
// can say port "auto".
func FindZWaveStick() (string, error) {
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("board: list serial ports: %w", err)
	}
	return matchZWaveStick(ports)
}

// matchZWaveStick picks the stick among enumerated ports: exactly one port
// with a specific id, else exactly one with a generic bridge id.
func matchZWaveStick(ports []*enumerator.PortDetails) (string, error) {
	var strong, weak []string
	var seen []string
	for _, p := range ports {
		if p == nil || !p.IsUSB {
			continue
		}
		seen = append(seen, fmt.Sprintf("%s (%s:%s)", p.Name, strings.ToLower(p.VID), strings.ToLower(p.PID)))
		for _, s := range zwaveSticks {
			if !strings.EqualFold(p.VID, s.vid) || !strings.EqualFold(p.PID, s.pid) {
				continue
			}
			desc := fmt.Sprintf("%s [%s]", p.Name, s.name)
			if s.generic {
				weak = append(weak, desc)
			} else {
				strong = append(strong, desc)
			}
		}
	}
	pick := strong
	if len(pick) == 0 {
		pick = weak
	}
	switch len(pick) {
	case 1:
		name, _, _ := strings.Cut(pick[0], " [")
		return name, nil
	case 0:
		if len(seen) == 0 {
			return "", fmt.Errorf("board: no USB serial port found: plug in the Z-Wave stick or name its port (e.g. /dev/ttyACM0)")
		}
		return "", fmt.Errorf("board: no known Z-Wave stick among USB serial ports %s: name the stick's port in the config", strings.Join(seen, ", "))
	default:
		return "", fmt.Errorf("board: several candidate Z-Wave sticks: %s: name the stick's port in the config", strings.Join(pick, ", "))
	}
}
