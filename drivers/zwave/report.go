package zwave

import (
	"errors"
	"fmt"
	"math"
)

// Command classes the driver reads.
const (
	ccBasic               = 0x20
	ccSwitchBinary        = 0x25
	ccSwitchMultilevel    = 0x26
	ccSensorBinary        = 0x30
	ccSensorMultilevel    = 0x31
	ccMeter               = 0x32
	ccMultiChannel        = 0x60
	ccDoorLock            = 0x62
	ccNotification        = 0x71
	ccBattery             = 0x80
	ccAssociation         = 0x85
	cmdMultiChannelEnc    = 0x0D
	cmdReportBasic        = 0x03 // Basic, Switch Binary, Switch Multilevel, Sensor Binary, Battery
	cmdReportSensor       = 0x05 // Sensor Multilevel
	cmdReportMeter        = 0x02
	cmdReportNotification = 0x05
)

// value is one decoded value of a report. Err is set when the report was
// understood but carries no usable value (e.g. "unknown state").
type value struct {
	Channel string
	Value   any // float64, int64 or bool
	Unit    string
	Err     error
}

var (
	errShort        = errors.New("report too short")
	errNotReport    = errors.New("not a report the driver decodes")
	errUnknownState = errors.New("the node reports an unknown state")
)

// decodeReport decodes one command (command class, command, parameters) as
// received in ApplicationCommandHandler. It returns errNotReport (wrapped)
// for commands it does not decode and a descriptive error for malformed
// ones; it never panics.
func decodeReport(cmd []byte) ([]value, error) {
	if len(cmd) < 2 {
		return nil, fmt.Errorf("zwave: command % X: %w", cmd, errShort)
	}
	var (
		vs  []value
		err error
	)
	switch cc, c := cmd[0], cmd[1]; {
	case cc == ccMultiChannel && c == cmdMultiChannelEnc:
		return decodeMultiChannel(cmd)
	case cc == ccBasic && c == cmdReportBasic:
		vs, err = decodeLevel("basic", cmd[2:], false)
	case cc == ccSwitchBinary && c == cmdReportBasic:
		vs, err = decodeSwitch(cmd[2:])
	case cc == ccSwitchMultilevel && c == cmdReportBasic:
		vs, err = decodeLevel("level", cmd[2:], true)
	case cc == ccSensorBinary && c == cmdReportBasic:
		vs, err = decodeSensorBinary(cmd[2:])
	case cc == ccSensorMultilevel && c == cmdReportSensor:
		vs, err = decodeSensorMultilevel(cmd[2:])
	case cc == ccMeter && c == cmdReportMeter:
		vs, err = decodeMeter(cmd[2:])
	case cc == ccNotification && c == cmdReportNotification:
		vs, err = decodeNotification(cmd[2:])
	case cc == ccBattery && c == cmdReportBasic:
		vs, err = decodeBattery(cmd[2:])
	case cc == ccDoorLock && c == doorLockReport:
		vs, err = decodeDoorLock(cmd[2:])
	default:
		return nil, fmt.Errorf("zwave: command class 0x%02X command 0x%02X: %w", cc, c, errNotReport)
	}
	if err != nil {
		return nil, fmt.Errorf("zwave: command class 0x%02X report % X: %w", cmd[0], cmd, err)
	}
	return vs, nil
}

// decodeMultiChannel unwraps a Multi Channel encapsulation and names the
// values of endpoint N with the suffix "_epN".
func decodeMultiChannel(cmd []byte) ([]value, error) {
	if len(cmd) < 4 {
		return nil, fmt.Errorf("zwave: multi channel % X: %w", cmd, errShort)
	}
	src := cmd[2] & 0x7F
	inner := cmd[4:]
	if len(inner) >= 2 && inner[0] == ccMultiChannel && inner[1] == cmdMultiChannelEnc {
		return nil, fmt.Errorf("zwave: multi channel % X: nested encapsulation", cmd)
	}
	vs, err := decodeReport(inner)
	if err != nil {
		return nil, err
	}
	if src != 0 {
		for i := range vs {
			vs[i].Channel = fmt.Sprintf("%s_ep%d", vs[i].Channel, src)
		}
	}
	return vs, nil
}

// decodeLevel decodes Basic and Multilevel Switch reports: 0..99, 0xFF
// (on, v1 Multilevel Switch: last level) and 0xFE (unknown). Version 2
// appends target and duration, which are ignored.
func decodeLevel(name string, p []byte, percent bool) ([]value, error) {
	if len(p) < 1 {
		return nil, errShort
	}
	unit := ""
	if percent {
		unit = "%"
	}
	switch v := p[0]; {
	case v <= 99:
		return []value{{Channel: name, Value: int64(v), Unit: unit}}, nil
	case v == 0xFF:
		return []value{{Channel: name, Value: int64(99), Unit: unit}}, nil
	case v == 0xFE:
		return []value{{Channel: name, Unit: unit, Err: errUnknownState}}, nil
	default:
		return nil, fmt.Errorf("level 0x%02X out of range", v)
	}
}

func decodeSwitch(p []byte) ([]value, error) {
	if len(p) < 1 {
		return nil, errShort
	}
	switch v := p[0]; v {
	case 0x00:
		return []value{{Channel: "switch", Value: false}}, nil
	case 0xFE:
		return []value{{Channel: "switch", Err: errUnknownState}}, nil
	default:
		if v <= 99 || v == 0xFF {
			return []value{{Channel: "switch", Value: true}}, nil
		}
		return nil, fmt.Errorf("switch value 0x%02X out of range", v)
	}
}

// Door Lock operation modes.
const (
	doorLockReport = 0x03
	doorUnsecured  = 0x00
	doorSecured    = 0xFF
	doorUnknown    = 0xFE
)

// decodeDoorLock decodes a Door Lock Operation Report: "lock" is true when
// the bolt is secured; every other mode (unsecured, with or without a
// timeout, inside or outside handles) is false.
func decodeDoorLock(p []byte) ([]value, error) {
	if len(p) < 1 {
		return nil, errShort
	}
	switch p[0] {
	case doorSecured:
		return []value{{Channel: "lock", Value: true}}, nil
	case doorUnknown:
		return []value{{Channel: "lock", Err: errUnknownState}}, nil
	case 0x00, 0x01, 0x10, 0x11, 0x20, 0x21:
		return []value{{Channel: "lock", Value: false}}, nil
	}
	return nil, fmt.Errorf("door lock mode 0x%02X unknown", p[0])
}

func decodeSensorBinary(p []byte) ([]value, error) {
	if len(p) < 1 {
		return nil, errShort
	}
	name := "binary_sensor"
	if len(p) >= 2 {
		t, ok := binarySensorTypes[p[1]]
		if !ok {
			return nil, fmt.Errorf("binary sensor type %d unknown", p[1])
		}
		name = "binary_" + t
	}
	return []value{{Channel: name, Value: p[0] != 0}}, nil
}

func decodeBattery(p []byte) ([]value, error) {
	if len(p) < 1 {
		return nil, errShort
	}
	switch v := p[0]; {
	case v == 0xFF:
		return []value{{Channel: "battery", Value: int64(0), Unit: "%"}, {Channel: "battery_low", Value: true}}, nil
	case v <= 100:
		return []value{{Channel: "battery", Value: int64(v), Unit: "%"}, {Channel: "battery_low", Value: false}}, nil
	default:
		return nil, fmt.Errorf("battery level %d out of range", v)
	}
}

// number decodes the precision/scale/size byte and the signed big-endian
// value that follows it, as Multilevel Sensor and Meter reports carry them.
func number(pss byte, p []byte) (v float64, scale byte, size int, err error) {
	prec, size := int(pss>>5), int(pss&0x07)
	scale = pss >> 3 & 0x03
	if size != 1 && size != 2 && size != 4 {
		return 0, 0, 0, fmt.Errorf("value size %d (want 1, 2 or 4)", size)
	}
	if len(p) < size {
		return 0, 0, 0, fmt.Errorf("value of %d bytes, %d present: %w", size, len(p), errShort)
	}
	var raw int64
	for _, b := range p[:size] {
		raw = raw<<8 | int64(b)
	}
	shift := uint(64 - 8*size)
	raw = raw << shift >> shift // sign-extend
	return float64(raw) / math.Pow10(prec), scale, size, nil
}

func decodeSensorMultilevel(p []byte) ([]value, error) {
	if len(p) < 2 {
		return nil, errShort
	}
	st, ok := sensorTypes[p[0]]
	if !ok {
		return nil, fmt.Errorf("multilevel sensor type %d unknown", p[0])
	}
	v, scale, _, err := number(p[1], p[2:])
	if err != nil {
		return nil, err
	}
	if int(scale) >= len(st.scales) {
		return nil, fmt.Errorf("multilevel sensor %s: scale %d unknown", st.name, scale)
	}
	sc := st.scales[scale]
	return []value{{Channel: st.name, Value: round(sc.toSI(v)), Unit: sc.unit}}, nil
}

// Meter rate types: a produced value gets the suffix "_produced".
const rateProduced = 2

func decodeMeter(p []byte) ([]value, error) {
	if len(p) < 2 {
		return nil, errShort
	}
	mt, ok := meterTypes[p[0]&0x1F]
	if !ok {
		return nil, fmt.Errorf("meter type %d unknown", p[0]&0x1F)
	}
	rate := p[0] >> 5 & 0x03
	v, scale, size, err := number(p[1], p[2:])
	if err != nil {
		return nil, err
	}
	scale |= p[0] >> 7 << 2 // scale bit 2 lives in the first byte (v3+)
	if scale == 7 {
		// Version 4: the scale continues in Scale 2, the report's last
		// byte, after delta time and (when present) the previous value.
		rest := p[2+size:]
		if len(rest) < 3 {
			return nil, fmt.Errorf("meter %s: extended scale missing", mt.name)
		}
		scale = 8 + rest[len(rest)-1]
	}
	sc, ok := mt.scales[scale]
	if !ok {
		return nil, fmt.Errorf("meter %s: scale %d unknown", mt.name, scale)
	}
	name := mt.name + "_" + sc.name
	if rate == rateProduced {
		name += "_produced"
	}
	return []value{{Channel: name, Value: round(sc.toSI(v)), Unit: sc.unit}}, nil
}

func decodeNotification(p []byte) ([]value, error) {
	if len(p) < 2 {
		return nil, errShort
	}
	// Version 1: alarm type and level only.
	if len(p) < 6 || p[4] == 0 {
		return []value{{Channel: fmt.Sprintf("alarm_%d", p[0]), Value: int64(p[1])}}, nil
	}
	name, ok := notificationTypes[p[4]]
	if !ok {
		name = fmt.Sprintf("type_%d", p[4])
	}
	return []value{{Channel: "notification_" + name, Value: int64(p[5])}}, nil
}

// round trims the noise a unit conversion leaves (20.1 °C stays 20.1).
func round(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	return math.Round(v*1e9) / 1e9
}
