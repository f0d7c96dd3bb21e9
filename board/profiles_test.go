package board

import (
	"strings"
	"testing"

	"go.bug.st/serial/enumerator"
)

func TestProfileUART(t *testing.T) {
	p, err := LookupProfile("waveshare-rs485-can-hat")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Resolve("rs485-0"); err != nil || got != "/dev/ttyAMA0" {
		t.Fatalf("rs485-0 = %q, %v", got, err)
	}
	if _, err := p.Resolve("rs485-1"); err == nil || !strings.Contains(err.Error(), "has no port") {
		t.Fatalf("rs485-1: %v", err)
	}
	if !strings.Contains(strings.Join(p.BootConfig, "\n"), "dtoverlay=disable-bt") {
		t.Fatalf("boot config %q does not free the PL011 UART", p.BootConfig)
	}
}

func TestProfileUSB(t *testing.T) {
	defer func(f func() ([]*enumerator.PortDetails, error)) { listUSB = f }(listUSB)
	listUSB = func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyUSB1", IsUSB: true, VID: "1A86", PID: "7523"},
			{Name: "/dev/ttyACM0", IsUSB: true, VID: "0658", PID: "0200"}, // a Z-Wave stick
			{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001"},
			{Name: "/dev/ttyAMA0"},
		}, nil
	}
	p, err := LookupProfile("usb-rs485")
	if err != nil {
		t.Fatal(err)
	}
	for port, want := range map[string]string{"rs485-0": "/dev/ttyUSB0", "rs485-1": "/dev/ttyUSB1"} {
		if got, err := p.Resolve(port); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %s", port, got, err, want)
		}
	}
	if _, err := p.Resolve("rs485-2"); err == nil || !strings.Contains(err.Error(), "only 2") {
		t.Errorf("rs485-2: %v", err)
	}
	if _, err := p.Resolve("rs485-01"); err == nil {
		t.Error("rs485-01 resolved")
	}
}

func TestProfileSC16IS7xxRefused(t *testing.T) {
	for _, name := range []string{"waveshare-2ch-rs485-hat", "sc16is7xx"} {
		err := SetProfile(name)
		if err == nil || !strings.Contains(err.Error(), "CONFIG_SERIAL_SC16IS7XX") {
			t.Errorf("SetProfile(%s) = %v, want the missing kernel driver named", name, err)
		}
	}
}

func TestResolveName(t *testing.T) {
	t.Setenv(ProfileEnv, "")
	SetProfile("")
	if _, err := resolveName("rs485-0"); err == nil || !strings.Contains(err.Error(), "needs a board profile") {
		t.Fatalf("no profile: %v", err)
	}
	t.Setenv(ProfileEnv, "pi-uart")
	if got, err := resolveName("rs485-0"); err != nil || got != "/dev/ttyAMA0" {
		t.Fatalf("from $%s: %q, %v", ProfileEnv, got, err)
	}
	if err := SetProfile("usb-rs485"); err != nil {
		t.Fatal(err)
	}
	defer SetProfile("")
	if p, _ := activeProfile(); p.Name != "usb-rs485" {
		t.Fatalf("SetProfile does not win over $%s: %s", ProfileEnv, p.Name)
	}
	if err := SetProfile("nope"); err == nil || !strings.Contains(err.Error(), "pi-uart") {
		t.Fatalf("unknown profile: %v", err)
	}
}
