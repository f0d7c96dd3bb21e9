package board

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"go.bug.st/serial/enumerator"
)

// Profile is a named piece of RS-485 hardware: which device each of its
// port names ("rs485-0", "rs485-1") is, and what the Raspberry Pi's boot
// config needs for it. Profiles are chosen with SetProfile (or the
// OSGATE_BOARD environment variable); device paths in the config work
// without any profile.
type Profile struct {
	Name        string
	Description string
	// Ports maps port names to device paths (a HAT on a fixed UART).
	Ports map[string]string
	// USB, when set, makes "rs485-N" the N-th USB serial port (by device
	// name) whose vendor:product id is listed: USB adapters enumerate in
	// no fixed order, but their ids are known.
	USB []USBSerial
	// BootConfig are the config.txt lines the Raspberry Pi needs for the
	// hardware (image/rpi/config.json's BootloaderExtraLines).
	BootConfig []string
	// RTC is the device of the board's battery-backed real-time clock,
	// which the clock source "rtc" reads.
	RTC string
	// Unsupported says why this hardware cannot work with osgate's image;
	// choosing the profile fails with it.
	Unsupported string
}

// USBSerial is a USB-serial bridge chip by vendor and product id (hex).
type USBSerial struct {
	VID, PID string
	Chip     string
}

// usbRS485 are the bridge chips of common USB RS-485 adapters; gokrazy's
// Raspberry Pi kernel builds in their drivers (ftdi_sio, cp210x, ch341).
var usbRS485 = []USBSerial{
	{VID: "0403", PID: "6001", Chip: "FTDI FT232R"},
	{VID: "0403", PID: "6010", Chip: "FTDI FT2232"},
	{VID: "0403", PID: "6011", Chip: "FTDI FT4232"},
	{VID: "0403", PID: "6014", Chip: "FTDI FT232H"},
	{VID: "0403", PID: "6015", Chip: "FTDI FT-X (FT230X, FT231X)"},
	{VID: "10c4", PID: "ea60", Chip: "Silicon Labs CP210x"},
	{VID: "1a86", PID: "7523", Chip: "WCH CH340/CH341"},
}

// piUARTConfig gives the Raspberry Pi's PL011 UART on GPIO 14/15 to the
// HAT as /dev/ttyAMA0: Pi 3B+, 4 and CM4 move Bluetooth off it
// (disable-bt); on the Pi 5 it is the RP1's UART0, switched on by
// dtparam=uart0. image/rpi/config.json carries these lines.
var piUARTConfig = []string{"enable_uart=1", "dtoverlay=disable-bt", "[pi5]", "dtparam=uart0=on", "[all]"}

// profiles are the RS-485 boards osgate knows. The ids and UART
// assignments come from vendor documentation; osgate's tests do not run
// on the hardware itself.
var profiles = map[string]*Profile{
	"waveshare-rs485-can-hat": {
		Name:        "waveshare-rs485-can-hat",
		Description: "Waveshare RS485 CAN HAT: RS-485 on the Pi's UART (GPIO 14/15, automatic direction); its CAN side (MCP2515) is not used",
		Ports:       map[string]string{"rs485-0": "/dev/ttyAMA0"},
		BootConfig:  piUARTConfig,
	},
	"pi-uart": {
		Name:        "pi-uart",
		Description: "any RS-485 transceiver with automatic direction on the Pi's UART (GPIO 14/15)",
		Ports:       map[string]string{"rs485-0": "/dev/ttyAMA0"},
		BootConfig:  piUARTConfig,
	},
	"usb-rs485": {
		Name:        "usb-rs485",
		Description: "USB RS-485 adapters on FTDI, CP210x or CH340/CH341 chips: rs485-0, rs485-1, ... in order of their device names",
		USB:         usbRS485,
	},
	// Real-time clock HATs: the Raspberry Pi has no clock that runs while
	// it is off. gokrazy's kernel builds in the DS1307 driver
	// (CONFIG_RTC_DRV_DS1307=y), which also drives the DS3231, DS1337,
	// DS1338, DS1339, DS1340, MCP7940x and RX8025/RX8130; the firmware's
	// i2c-rtc overlay puts the chip on I2C1 (GPIO 2/3) at 0x68.
	"rtc-ds3231": {
		Name:        "rtc-ds3231",
		Description: "real-time clock HATs on the DS3231 (I2C, 0x68): most Raspberry Pi RTC modules with a coin cell",
		RTC:         "/dev/rtc0",
		BootConfig:  []string{"dtoverlay=i2c-rtc,ds3231"},
	},
	"rtc-ds1307": {
		Name:        "rtc-ds1307",
		Description: "real-time clock HATs on the DS1307 (I2C, 0x68)",
		RTC:         "/dev/rtc0",
		BootConfig:  []string{"dtoverlay=i2c-rtc,ds1307"},
	},
	"rtc-pcf85063": {
		Name:        "rtc-pcf85063",
		Description: "real-time clock HATs on the PCF85063 (I2C, 0x51), e.g. on Waveshare and Seeed boards",
		Unsupported: rtcMissing("PCF85063", "CONFIG_RTC_DRV_PCF85063"),
	},
	"rtc-pcf8523": {
		Name:        "rtc-pcf8523",
		Description: "real-time clock HATs on the PCF8523 (I2C, 0x68), e.g. Adafruit's PiRTC",
		Unsupported: rtcMissing("PCF8523", "CONFIG_RTC_DRV_PCF8523"),
	},
	"rtc-pcf8563": {
		Name:        "rtc-pcf8563",
		Description: "real-time clock HATs on the PCF8563 (I2C, 0x51)",
		Unsupported: rtcMissing("PCF8563", "CONFIG_RTC_DRV_PCF8563"),
	},
	"waveshare-2ch-rs485-hat": {
		Name:        "waveshare-2ch-rs485-hat",
		Description: "Waveshare 2-CH RS485 HAT (SC16IS752 on SPI, /dev/ttySC0 and /dev/ttySC1)",
		Unsupported: sc16is7xx,
	},
	"sc16is7xx": {
		Name:        "sc16is7xx",
		Description: "RS-485 HATs built on the SC16IS740/750/752 UART bridge (I2C or SPI)",
		Unsupported: sc16is7xx,
	},
}

const sc16is7xx = "gokrazy's Raspberry Pi kernel lacks the SC16IS7xx UART driver (CONFIG_SERIAL_SC16IS7XX) that this HAT needs: " +
	"its ports (/dev/ttySC*) never appear. Use a HAT on the Pi's own UART (profile waveshare-rs485-can-hat or pi-uart) " +
	"or USB RS-485 adapters (profile usb-rs485)"

// rtcMissing is why an RTC chip's HAT cannot work.
func rtcMissing(chip, option string) string {
	return "gokrazy's Raspberry Pi kernel lacks the " + chip + " real-time clock driver (" + option + "): the clock never appears as /dev/rtc0. " +
		"Use an RTC HAT on the DS3231 or DS1307 (profiles rtc-ds3231, rtc-ds1307), or a time source on the network (clock.sources)"
}

// ProfileEnv names the board profile when SetProfile was not called.
const ProfileEnv = "OSGATE_BOARD"

var (
	activeMu sync.Mutex
	active   []*Profile
	// listUSB enumerates serial ports; tests replace it.
	listUSB = func() ([]*enumerator.PortDetails, error) { return enumerator.GetDetailedPortsList() }
)

// Profiles lists the known profiles by name.
func Profiles() []*Profile {
	ps := make([]*Profile, 0, len(profiles))
	for _, p := range profiles {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// LookupProfile returns a known profile, or an error that lists them; a
// profile for hardware that cannot work is an error saying why.
func LookupProfile(name string) (*Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return nil, fmt.Errorf("board: unknown profile %q; known: %s", name, strings.Join(profileNames(), ", "))
	}
	if p.Unsupported != "" {
		return nil, fmt.Errorf("board: profile %s (%s) cannot work: %s", p.Name, p.Description, p.Unsupported)
	}
	return p, nil
}

// SetProfile makes profiles the ones that resolve port names and name the
// real-time clock: one name, or several separated by commas (an RS-485
// HAT and an RTC HAT: "pi-uart,rtc-ds3231"); "" clears them.
func SetProfile(names string) error {
	ps, err := lookupProfiles(names)
	if err != nil {
		return err
	}
	activeMu.Lock()
	defer activeMu.Unlock()
	active = ps
	return nil
}

// lookupProfiles looks up a comma-separated list of profile names.
func lookupProfiles(names string) ([]*Profile, error) {
	var ps []*Profile
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		p, err := LookupProfile(n)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// activeProfiles are the profiles set by SetProfile, else the ones
// $OSGATE_BOARD names, else none.
func activeProfiles() ([]*Profile, error) {
	activeMu.Lock()
	ps := active
	activeMu.Unlock()
	if len(ps) > 0 {
		return ps, nil
	}
	return lookupProfiles(os.Getenv(ProfileEnv))
}

// activeProfile is the first active profile, or nil.
func activeProfile() (*Profile, error) {
	ps, err := activeProfiles()
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	return ps[0], nil
}

// RTC is the real-time clock device the active profiles name, "" when
// none does.
func RTC() (string, error) {
	ps, err := activeProfiles()
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.RTC != "" {
			return p.RTC, nil
		}
	}
	return "", nil
}

// resolveName resolves a port name ("rs485-0") through the active
// profiles: the first that has the port.
func resolveName(port string) (string, error) {
	ps, err := activeProfiles()
	if err != nil {
		return "", err
	}
	var serial []*Profile
	for _, p := range ps {
		if len(p.Ports) > 0 || len(p.USB) > 0 {
			serial = append(serial, p)
		}
	}
	if len(serial) == 0 {
		with := ""
		if len(ps) > 0 {
			with = " with serial ports"
		}
		return "", fmt.Errorf("board: port name %q needs a board profile%s (%s=NAME; known: %s), or use a device path such as /dev/ttyUSB0",
			port, with, ProfileEnv, strings.Join(serialProfileNames(), ", "))
	}
	var first error
	for _, p := range serial {
		path, err := p.Resolve(port)
		if err == nil {
			return path, nil
		}
		if first == nil {
			first = err
		}
	}
	return "", first
}

// Resolve turns one of the profile's port names into a device path.
func (p *Profile) Resolve(port string) (string, error) {
	if path, ok := p.Ports[port]; ok {
		return path, nil
	}
	if len(p.USB) > 0 {
		var n int
		if _, err := fmt.Sscanf(port, "rs485-%d", &n); err == nil && n >= 0 && port == fmt.Sprintf("rs485-%d", n) {
			return p.usbPort(port, n)
		}
	}
	names := make([]string, 0, len(p.Ports))
	for n := range p.Ports {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(p.USB) > 0 {
		names = append(names, "rs485-0, rs485-1, ...")
	}
	return "", fmt.Errorf("board: profile %s has no port %q (it has %s)", p.Name, port, strings.Join(names, ", "))
}

func (p *Profile) usbPort(port string, n int) (string, error) {
	ports, err := listUSB()
	if err != nil {
		return "", fmt.Errorf("board: list serial ports: %w", err)
	}
	var found []string
	for _, d := range ports {
		if d == nil || !d.IsUSB {
			continue
		}
		for _, u := range p.USB {
			if strings.EqualFold(d.VID, u.VID) && strings.EqualFold(d.PID, u.PID) {
				found = append(found, d.Name)
				break
			}
		}
	}
	sort.Strings(found)
	if n < len(found) {
		return found[n], nil
	}
	if len(found) == 0 {
		return "", errors.New("board: " + port + ": no USB RS-485 adapter found (FTDI, CP210x, CH340/CH341): plug one in, or name the port's device path")
	}
	return "", fmt.Errorf("board: %s: only %d USB RS-485 adapter(s) found (%s)", port, len(found), strings.Join(found, ", "))
}

// serialProfileNames are the profiles that name serial ports.
func serialProfileNames() []string {
	var names []string
	for _, p := range Profiles() {
		if p.Unsupported == "" && (len(p.Ports) > 0 || len(p.USB) > 0) {
			names = append(names, p.Name)
		}
	}
	return names
}

func profileNames() []string {
	var names []string
	for _, p := range Profiles() {
		if p.Unsupported == "" {
			names = append(names, p.Name)
		}
	}
	return names
}
