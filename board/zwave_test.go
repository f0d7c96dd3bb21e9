package board

import (
	"strings"
	"testing"

	"go.bug.st/serial/enumerator"
)

// Enumerator output as go.bug.st/serial/enumerator reports it on Linux
// (sysfs: lower-case hex ids); written from vendor documentation, not
// captured from the hardware itself.
var (
	piUART   = &enumerator.PortDetails{Name: "/dev/ttyAMA0"}
	ftdi485  = &enumerator.PortDetails{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001", SerialNumber: "A10KZ3QX"}
	zstick5  = &enumerator.PortDetails{Name: "/dev/ttyACM0", IsUSB: true, VID: "0658", PID: "0200"}
	uzb7     = &enumerator.PortDetails{Name: "/dev/ttyACM1", IsUSB: true, VID: "0658", PID: "0280"}
	zst10700 = &enumerator.PortDetails{Name: "/dev/ttyUSB1", IsUSB: true, VID: "10C4", PID: "EA60", SerialNumber: "c8d4b1d2"}
	cp2102   = &enumerator.PortDetails{Name: "/dev/ttyUSB2", IsUSB: true, VID: "10c4", PID: "ea60", SerialNumber: "0001"}
	zst39    = &enumerator.PortDetails{Name: "/dev/ttyACM2", IsUSB: true, VID: "1a86", PID: "55d4"}
	// The HUSBZB-1 shows two ports with one id: Z-Wave and Zigbee.
	husbzbZW = &enumerator.PortDetails{Name: "/dev/ttyUSB3", IsUSB: true, VID: "10c4", PID: "8a2a"}
	husbzbZB = &enumerator.PortDetails{Name: "/dev/ttyUSB4", IsUSB: true, VID: "10c4", PID: "8a2a"}
)

func TestMatchZWaveStick(t *testing.T) {
	cases := []struct {
		name  string
		ports []*enumerator.PortDetails
		want  string
		err   string
	}{
		{"Z-Stick Gen5 next to an RS-485 adapter", []*enumerator.PortDetails{piUART, ftdi485, zstick5}, "/dev/ttyACM0", ""},
		{"UZB-7", []*enumerator.PortDetails{uzb7, piUART}, "/dev/ttyACM1", ""},
		{"HUSBZB-1 needs its port named", []*enumerator.PortDetails{husbzbZW, husbzbZB}, "", "several candidate"},
		{"generic CP210x alone (upper-case ids)", []*enumerator.PortDetails{ftdi485, zst10700}, "/dev/ttyUSB1", ""},
		{"CH9102 alone", []*enumerator.PortDetails{zst39}, "/dev/ttyACM2", ""},
		{"specific id wins over a generic bridge", []*enumerator.PortDetails{cp2102, zstick5}, "/dev/ttyACM0", ""},
		{"two generic bridges are ambiguous", []*enumerator.PortDetails{zst10700, cp2102}, "", "several candidate"},
		{"two sticks are ambiguous", []*enumerator.PortDetails{zstick5, uzb7}, "", "/dev/ttyACM0 [Sigma"},
		{"no stick", []*enumerator.PortDetails{piUART, ftdi485}, "", "/dev/ttyUSB0 (0403:6001)"},
		{"no USB port", []*enumerator.PortDetails{piUART, nil}, "", "no USB serial port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := matchZWaveStick(c.ports)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// FindZWaveStick runs the real enumerator; on a machine without a stick it
// must say so instead of returning a port.
func TestFindZWaveStickHere(t *testing.T) {
	p, err := FindZWaveStick()
	if (err == nil) != strings.HasPrefix(p, "/dev/") {
		t.Fatalf("FindZWaveStick returned %q", p)
	}
	t.Logf("this machine: %q, %v", p, err)
}
