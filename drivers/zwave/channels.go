package zwave

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// channelDef says how to read (and maybe write) one named channel of a
// node: the Get command whose report carries it, and for switches the Set.
type channelDef struct {
	get []byte
	set func(v any) ([]byte, error)
	ep  byte // Multi Channel endpoint, 0: the node itself
}

// channelDefs holds every channel name the driver can poll, derived from
// the value tables so that a polled channel and a reported one agree.
var channelDefs = buildChannelDefs()

func buildChannelDefs() map[string]channelDef {
	defs := map[string]channelDef{
		"switch":  {get: []byte{ccSwitchBinary, 0x02}, set: setSwitch},
		"level":   {get: []byte{ccSwitchMultilevel, 0x02}, set: setLevel(ccSwitchMultilevel)},
		"basic":   {get: []byte{ccBasic, 0x02}, set: setLevel(ccBasic)},
		"battery": {get: []byte{ccBattery, 0x02}},
		// battery_low comes with battery.
		"battery_low":   {get: []byte{ccBattery, 0x02}},
		"binary_sensor": {get: []byte{ccSensorBinary, 0x02}},
		"lock":          {get: []byte{ccDoorLock, 0x02}, set: setLock},
	}
	for t, st := range sensorTypes {
		// Version 5+ Get names type and scale; older nodes ignore the rest.
		defs[st.name] = channelDef{get: []byte{ccSensorMultilevel, 0x04, t, 0x00}}
	}
	for t, name := range binarySensorTypes {
		defs["binary_"+name] = channelDef{get: []byte{ccSensorBinary, 0x02, t}}
	}
	for t, name := range notificationTypes {
		defs["notification_"+name] = channelDef{get: []byte{ccNotification, 0x04, 0x00, t, 0x00}}
	}
	for _, mt := range meterTypes {
		for s, sc := range mt.scales {
			name := mt.name + "_" + sc.name
			if _, done := defs[name]; done && s != 0 {
				continue // the SI scale (lowest id) is the one asked for
			}
			var get []byte
			if s >= 8 {
				get = []byte{ccMeter, 0x01, 7 << 3, s - 8}
			} else {
				get = []byte{ccMeter, 0x01, s << 3}
			}
			defs[name] = channelDef{get: get}
			defs[name+"_produced"] = channelDef{get: append(append([]byte(nil), get[:2]...), append([]byte{get[2] | rateProduced<<6}, get[3:]...)...)}
		}
	}
	return defs
}

// lookupChannel finds a channel by name; "NAME_epN" is channel NAME of
// endpoint N (1..127) of a Multi Channel node, read and written through
// Multi Channel encapsulation (def.ep).
func lookupChannel(name string) (channelDef, bool) {
	if def, ok := channelDefs[name]; ok {
		return def, true
	}
	i := strings.LastIndex(name, "_ep")
	if i < 0 {
		return channelDef{}, false
	}
	ep, err := strconv.Atoi(name[i+3:])
	if err != nil || ep < 1 || ep > 127 || strconv.Itoa(ep) != name[i+3:] {
		return channelDef{}, false
	}
	def, ok := channelDefs[name[:i]]
	if !ok {
		return channelDef{}, false
	}
	def.ep = byte(ep)
	return def, true
}

// knownChannels lists the channel names for error messages.
func knownChannels() []string {
	names := make([]string, 0, len(channelDefs))
	for n := range channelDefs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// writableList names the channels that can be written, for errors.
const writableList = "switch, level, basic and lock"

// setLock secures (true) or unsecures (false) a door lock.
func setLock(v any) ([]byte, error) {
	secured, err := asBool(v)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	mode := byte(doorUnsecured)
	if secured {
		mode = doorSecured
	}
	return []byte{ccDoorLock, 0x01, mode}, nil
}

func setSwitch(v any) ([]byte, error) {
	on, err := asBool(v)
	if err != nil {
		return nil, err
	}
	b := byte(0x00)
	if on {
		b = 0xFF
	}
	return []byte{ccSwitchBinary, 0x01, b}, nil
}

func setLevel(cc byte) func(v any) ([]byte, error) {
	return func(v any) ([]byte, error) {
		var level byte
		switch x := v.(type) {
		case bool:
			if x {
				level = 0xFF // on at the last level
			}
		case int64:
			if x < 0 || x > 99 {
				return nil, fmt.Errorf("level %d out of range 0..99", x)
			}
			level = byte(x)
		case float64:
			if math.IsNaN(x) || x < 0 || x > 99 {
				return nil, fmt.Errorf("level %g out of range 0..99", x)
			}
			level = byte(math.Round(x))
		default:
			return nil, fmt.Errorf("level must be a number 0..99 or a bool, not %T", v)
		}
		return []byte{cc, 0x01, level}, nil
	}
}

func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case string:
		switch x {
		case "on", "true", "1":
			return true, nil
		case "off", "false", "0":
			return false, nil
		}
	}
	return false, fmt.Errorf("value must be a bool, 0/1 or \"on\"/\"off\", not %v (%T)", v, v)
}
