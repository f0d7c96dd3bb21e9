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

// TestRTCProfiles: RTC HATs whose driver gokrazy's kernel builds in
// (DS1307 family) name /dev/rtc0 and their config.txt line; the others
// are refused naming the missing driver, as SC16IS7xx HATs are.
func TestRTCProfiles(t *testing.T) {
	t.Setenv(ProfileEnv, "")
	defer SetProfile("")
	for _, name := range []string{"rtc-ds3231", "rtc-ds1307"} {
		p, err := LookupProfile(name)
		if err != nil || p.RTC != "/dev/rtc0" || len(p.BootConfig) != 1 || !strings.HasPrefix(p.BootConfig[0], "dtoverlay=i2c-rtc,") {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	for name, option := range map[string]string{"rtc-pcf85063": "CONFIG_RTC_DRV_PCF85063", "rtc-pcf8523": "CONFIG_RTC_DRV_PCF8523", "rtc-pcf8563": "CONFIG_RTC_DRV_PCF8563"} {
		if err := SetProfile(name); err == nil || !strings.Contains(err.Error(), option) || !strings.Contains(err.Error(), "rtc-ds3231") {
			t.Errorf("SetProfile(%s) = %v, want the missing driver named and a HAT that works", name, err)
		}
	}
	// An RS-485 HAT and an RTC HAT together.
	if err := SetProfile("pi-uart,rtc-ds3231"); err != nil {
		t.Fatal(err)
	}
	if dev, err := RTC(); err != nil || dev != "/dev/rtc0" {
		t.Fatalf("RTC = %q, %v", dev, err)
	}
	if got, err := resolveName("rs485-0"); err != nil || got != "/dev/ttyAMA0" {
		t.Fatalf("rs485-0 = %q, %v", got, err)
	}
	// An RTC profile alone has no serial ports.
	SetProfile("rtc-ds3231")
	if _, err := resolveName("rs485-0"); err == nil || !strings.Contains(err.Error(), "with serial ports") {
		t.Fatalf("rs485-0 with an RTC profile only: %v", err)
	}
	SetProfile("")
	t.Setenv(ProfileEnv, "usb-rs485, rtc-ds1307")
	if dev, err := RTC(); err != nil || dev != "/dev/rtc0" {
		t.Fatalf("RTC from $%s = %q, %v", ProfileEnv, dev, err)
	}
	t.Setenv(ProfileEnv, "pi-uart")
	if dev, err := RTC(); err != nil || dev != "" {
		t.Fatalf("RTC without an RTC profile = %q, %v", dev, err)
	}
}
