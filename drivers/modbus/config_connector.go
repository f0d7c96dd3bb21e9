package modbus

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/osgate/osgate/board"
	"github.com/osgate/osgate/internal/strict"
)

// Transports a connector can use.
const (
	transportTCP        = "tcp"        // Modbus TCP (MBAP header)
	transportRTU        = "rtu"        // RTU frames on a serial port (RS-485)
	transportRTUOverTCP = "rtuovertcp" // RTU frames through a TCP serial server
)

// Limits of one read request (Modbus application protocol, 6.1 to 6.4).
const (
	maxRegistersPerRead = 125
	maxBitsPerRead      = 2000
)

// settings is the connector's "settings" object.
type settings struct {
	// Transport is tcp, rtu or rtuovertcp; without it, "port" means rtu and
	// "address" means tcp.
	Transport string `json:"transport"`
	// Address is host:port for tcp and rtuovertcp.
	Address string `json:"address"`
	// Port is a serial device path or a board port name, for rtu.
	Port     string         `json:"port"`
	Baud     int            `json:"baud"`
	DataBits int            `json:"data_bits"`
	Parity   string         `json:"parity"`
	StopBits int            `json:"stop_bits"`
	RS485    *rs485Settings `json:"rs485"`
	// Timeout bounds one request, counted from when it is handed to the
	// transport (time spent queued behind other devices counts).
	Timeout time.Duration `json:"timeout"`
	// FrameDelay is the silence kept between the end of one transaction and
	// the start of the next on the line.
	FrameDelay *time.Duration `json:"frame_delay"`
	// MaxGap is the largest run of unused registers a read bridges.
	MaxGap int `json:"max_gap"`
	// MaxRegisters caps registers per read for devices that accept less than 125.
	MaxRegisters int `json:"max_registers"`
	// Reprobe is how long a read that was split after an exception stays
	// split before the merged read is tried again.
	Reprobe time.Duration `json:"reprobe"`
}

// rs485Settings are the kernel's RS-485 options (TIOCSRS485); the object's
// presence turns RS-485 mode on.
type rs485Settings struct {
	RTSOnSend       bool          `json:"rts_on_send"`
	RTSAfterSend    bool          `json:"rts_after_send"`
	DelayBeforeSend time.Duration `json:"delay_before_send"`
	DelayAfterSend  time.Duration `json:"delay_after_send"`
	RxDuringTx      bool          `json:"rx_during_tx"`
}

// Defaults applied before decoding.
const (
	defaultTimeout = time.Second
	defaultMaxGap  = 10
	defaultReprobe = 10 * time.Minute
)

// linkConfig identifies one transport owner: everything that must agree
// between connectors sharing a TCP endpoint or a serial port.
type linkConfig struct {
	transport  string
	address    string // host:port or resolved device path
	baud       int
	dataBits   int
	parity     string
	stopBits   int
	rs485      rs485Settings
	useRS485   bool
	frameDelay time.Duration
	// readTimeout is the serial port's read timeout, fixed when the port
	// opens (rtu only): connectors sharing a port must agree on timeout.
	readTimeout time.Duration
}

func (l linkConfig) key() string { return l.transport + " " + l.address }

// parseSettings decodes and checks the connector's settings. Paths in the
// returned errors start with "settings.".
func parseSettings(raw []byte) (settings, linkConfig, strict.Errors) {
	s := settings{
		Timeout:      defaultTimeout,
		MaxGap:       defaultMaxGap,
		MaxRegisters: maxRegistersPerRead,
		Reprobe:      defaultReprobe,
		DataBits:     8,
		Parity:       "N",
		StopBits:     1,
	}
	var es strict.Errors
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := strict.Decode(raw, &s); err != nil {
		es.Merge("settings", err)
		return s, linkConfig{}, es
	}
	if s.Transport == "" {
		switch {
		case s.Port != "" && s.Address == "":
			s.Transport = transportRTU
		case s.Address != "" && s.Port == "":
			s.Transport = transportTCP
		}
	}
	lc := linkConfig{transport: s.Transport}
	switch s.Transport {
	case transportTCP, transportRTUOverTCP:
		if s.Address == "" {
			es.Add("settings.address", "is required for transport %q (host:port, e.g. \"192.168.1.20:502\")", s.Transport)
		} else if err := checkHostPort(s.Address); err != nil {
			es.Add("settings.address", "%v", err)
		}
		if s.Port != "" {
			es.Add("settings.port", "is only for transport \"rtu\"; use \"address\" for %q", s.Transport)
		}
		for name, set := range map[string]bool{"baud": s.Baud != 0, "rs485": s.RS485 != nil} {
			if set {
				es.Add("settings."+name, "is only for transport \"rtu\" (the serial server sets the line up)")
			}
		}
		lc.address = s.Address
	case transportRTU:
		if s.Address != "" {
			es.Add("settings.address", "is only for tcp and rtuovertcp; use \"port\" for a serial line")
		}
		if s.Port == "" {
			es.Add("settings.port", "is required for transport \"rtu\" (a device path like \"/dev/ttyUSB0\" or a board port name like \"rs485-0\")")
		} else if p, err := board.ResolvePort(s.Port); err != nil {
			es.Add("settings.port", "%v", err)
		} else {
			lc.address = p
		}
		if s.Baud == 0 {
			es.Add("settings.baud", "is required for transport \"rtu\" (e.g. 9600 or 19200)")
		} else if !validBaud(s.Baud) {
			es.Add("settings.baud", "%d is not a baud rate the serial driver supports (e.g. 9600, 19200, 38400, 115200)", s.Baud)
		}
		if s.DataBits < 5 || s.DataBits > 8 {
			es.Add("settings.data_bits", "must be 5, 6, 7 or 8, not %d", s.DataBits)
		}
		if s.Parity != "N" && s.Parity != "E" && s.Parity != "O" {
			es.Add("settings.parity", "must be \"N\", \"E\" or \"O\", not %q%s", s.Parity, parityHint(s.Parity))
		}
		if s.StopBits != 1 && s.StopBits != 2 {
			es.Add("settings.stop_bits", "must be 1 or 2, not %d", s.StopBits)
		}
		if r := s.RS485; r != nil {
			checkRTSDelay(&es, "settings.rs485.delay_before_send", r.DelayBeforeSend)
			checkRTSDelay(&es, "settings.rs485.delay_after_send", r.DelayAfterSend)
			lc.rs485, lc.useRS485 = *r, true
		}
		lc.baud, lc.dataBits, lc.parity, lc.stopBits = s.Baud, s.DataBits, s.Parity, s.StopBits
		lc.readTimeout = s.Timeout
	case "":
		es.Add("settings.transport", "is required: \"tcp\", \"rtu\" or \"rtuovertcp\" (or give only \"port\" for RTU on a serial line, only \"address\" for Modbus TCP)")
	default:
		es.Add("settings.transport", "must be \"tcp\", \"rtu\" or \"rtuovertcp\", not %q%s", s.Transport, strict.DidYouMean(s.Transport, []string{"tcp", "rtu", "rtuovertcp"}))
	}
	if s.Timeout <= 0 || s.Timeout > time.Minute {
		es.Add("settings.timeout", "must be more than 0 and at most 1m, not %s", s.Timeout)
	}
	if s.FrameDelay != nil {
		if *s.FrameDelay < 0 || *s.FrameDelay > 10*time.Second {
			es.Add("settings.frame_delay", "must be from 0 to 10s, not %s", *s.FrameDelay)
		}
		lc.frameDelay = *s.FrameDelay
	} else if s.Transport == transportRTU && s.Baud > 0 {
		lc.frameDelay = silentInterval(s.Baud)
	}
	if s.MaxGap < 0 || s.MaxGap > maxRegistersPerRead {
		es.Add("settings.max_gap", "must be from 0 to %d registers, not %d", maxRegistersPerRead, s.MaxGap)
	}
	if s.MaxRegisters < 1 || s.MaxRegisters > maxRegistersPerRead {
		es.Add("settings.max_registers", "must be from 1 to %d, not %d", maxRegistersPerRead, s.MaxRegisters)
	}
	if s.Reprobe <= 0 {
		es.Add("settings.reprobe", "must be more than 0, not %s", s.Reprobe)
	}
	return s, lc, es
}

// silentInterval is the 3.5 character times an RTU line must stay silent
// between frames (fixed at 1.75 ms above 19200 baud, as the spec says).
func silentInterval(baud int) time.Duration {
	if baud > 19200 {
		return 1750 * time.Microsecond
	}
	// 11 bits per character on the wire.
	return time.Duration(3.5*11*float64(time.Second)/float64(baud)) + 1
}

func validBaud(b int) bool {
	switch b {
	case 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000:
		return true
	}
	return false
}

func checkRTSDelay(es *strict.Errors, path string, d time.Duration) {
	if d < 0 || d > time.Second || d%time.Millisecond != 0 {
		es.Add(path, "must be whole milliseconds from 0 to 1s (the kernel counts in ms), not %s", d)
	}
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port (e.g. \"192.168.1.20:502\")", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", a, port)
	}
	return nil
}

// parityHint suggests the letter for a parity written out ("even").
func parityHint(p string) string {
	switch strings.ToLower(p) {
	case "none", "n":
		return ` (did you mean "N"?)`
	case "even", "e":
		return ` (did you mean "E"?)`
	case "odd", "o":
		return ` (did you mean "O"?)`
	}
	return ""
}
