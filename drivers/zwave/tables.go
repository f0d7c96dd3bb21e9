package zwave

// Names and units of Z-Wave values. Channel names are stable per quantity:
// a value reported in a non-SI scale (°F, ft³, US gallons, mA) is converted
// so that one channel always carries one unit.

type scale struct {
	name string // meter scales: the channel suffix ("kwh")
	unit string
	mul  float64 // SI = value×mul + add; mul 0 means 1
	add  float64
}

func (s scale) toSI(v float64) float64 {
	if s.mul == 0 {
		return v + s.add
	}
	return v*s.mul + s.add
}

var (
	celsius    = scale{unit: "°C"}
	fahrenheit = scale{unit: "°C", mul: 5.0 / 9, add: -32 * 5.0 / 9}
	percent    = scale{unit: "%"}
	none       = scale{}
)

type sensorType struct {
	name   string
	scales []scale // index: the report's scale field
}

// sensorTypes are the Multilevel Sensor types the driver names.
var sensorTypes = map[byte]sensorType{
	0x01: {"air_temperature", []scale{celsius, fahrenheit}},
	0x02: {"general_purpose", []scale{percent, none}},
	0x03: {"illuminance", []scale{percent, {unit: "lx"}}},
	0x04: {"power", []scale{{unit: "W"}, {unit: "W", mul: 0.29307107}}},
	0x05: {"humidity", []scale{percent, {unit: "g/m^3"}}},
	0x06: {"velocity", []scale{{unit: "m/s"}, {unit: "m/s", mul: 0.44704}}},
	0x07: {"direction", []scale{{unit: "°"}}},
	0x08: {"atmospheric_pressure", []scale{{unit: "kPa"}, {unit: "kPa", mul: 3.386389}}},
	0x09: {"barometric_pressure", []scale{{unit: "kPa"}, {unit: "kPa", mul: 3.386389}}},
	0x0A: {"solar_radiation", []scale{{unit: "W/m^2"}}},
	0x0B: {"dew_point", []scale{celsius, fahrenheit}},
	0x0C: {"rain_rate", []scale{{unit: "mm/h"}, {unit: "mm/h", mul: 25.4}}},
	0x0D: {"tide_level", []scale{{unit: "m"}, {unit: "m", mul: 0.3048}}},
	0x0F: {"voltage", []scale{{unit: "V"}, {unit: "V", mul: 0.001}}},
	0x10: {"current", []scale{{unit: "A"}, {unit: "A", mul: 0.001}}},
	0x11: {"co2_level", []scale{{unit: "ppm"}}},
	0x12: {"air_flow", []scale{{unit: "m^3/h"}, {unit: "m^3/h", mul: 1.699011}}},
	0x13: {"tank_capacity", []scale{{unit: "m^3", mul: 0.001}, {unit: "m^3"}, {unit: "m^3", mul: 0.003785412}}},
	0x14: {"distance", []scale{{unit: "m"}, {unit: "m", mul: 0.01}, {unit: "m", mul: 0.3048}}},
	0x17: {"water_temperature", []scale{celsius, fahrenheit}},
	0x18: {"soil_temperature", []scale{celsius, fahrenheit}},
	0x1B: {"ultraviolet", []scale{none}},
	0x1F: {"moisture", []scale{percent, {unit: "m^3/m^3"}, {unit: "kΩ"}, {unit: "aw"}}},
	0x28: {"co_level", []scale{{unit: "mol/m^3"}, {unit: "ppm"}}},
	0x40: {"target_temperature", []scale{celsius, fahrenheit}},
}

type meterType struct {
	name   string
	scales map[byte]scale // scale ≥ 8: extended scale 7 + scale2
}

var (
	cubic = scale{name: "m3", unit: "m^3"}
	pulse = scale{name: "pulses"}
)

// meterTypes are the Meter types and scales the driver names.
var meterTypes = map[byte]meterType{
	0x01: {"electric", map[byte]scale{
		0: {name: "kwh", unit: "kWh"},
		1: {name: "kvah", unit: "kVAh"},
		2: {name: "w", unit: "W"},
		3: pulse,
		4: {name: "v", unit: "V"},
		5: {name: "a", unit: "A"},
		6: {name: "pf"},
		8: {name: "kvar", unit: "kvar"},
		9: {name: "kvarh", unit: "kvarh"},
	}},
	0x02: {"gas", map[byte]scale{
		0: cubic,
		1: {name: "m3", unit: "m^3", mul: 0.028316847},
		3: pulse,
	}},
	0x03: {"water", map[byte]scale{
		0: cubic,
		1: {name: "m3", unit: "m^3", mul: 0.028316847},
		2: {name: "m3", unit: "m^3", mul: 0.003785412},
		3: pulse,
	}},
	0x04: {"heating", map[byte]scale{0: {name: "kwh", unit: "kWh"}}},
	0x05: {"cooling", map[byte]scale{0: {name: "kwh", unit: "kWh"}}},
}

// binarySensorTypes name the Binary Sensor types (channel "binary_NAME").
var binarySensorTypes = map[byte]string{
	0x01: "general_purpose",
	0x02: "smoke",
	0x03: "co",
	0x04: "co2",
	0x05: "heat",
	0x06: "water",
	0x07: "freeze",
	0x08: "tamper",
	0x09: "aux",
	0x0A: "door_window",
	0x0B: "tilt",
	0x0C: "motion",
	0x0D: "glass_break",
	0xFF: "any",
}

// notificationTypes name the Notification types (channel
// "notification_NAME", value: the event, 0 = idle).
var notificationTypes = map[byte]string{
	0x01: "smoke_alarm",
	0x02: "co_alarm",
	0x03: "co2_alarm",
	0x04: "heat_alarm",
	0x05: "water_alarm",
	0x06: "access_control",
	0x07: "home_security",
	0x08: "power_management",
	0x09: "system",
	0x0A: "emergency",
	0x0B: "clock",
	0x0C: "appliance",
	0x0D: "home_health",
	0x0E: "siren",
	0x0F: "water_valve",
	0x10: "weather_alarm",
	0x11: "irrigation",
	0x12: "gas_alarm",
	0x13: "pest_control",
	0x14: "light_sensor",
	0x15: "water_quality",
	0x16: "home_monitoring",
}

// ccNames name command classes for the "nodes" command.
var ccNames = map[byte]string{
	0x20: "basic", 0x25: "switch_binary", 0x26: "switch_multilevel", 0x27: "switch_all",
	0x30: "sensor_binary", 0x31: "sensor_multilevel", 0x32: "meter", 0x33: "switch_color",
	0x40: "thermostat_mode", 0x43: "thermostat_setpoint", 0x56: "crc16_encap", 0x59: "association_group_info",
	0x5A: "device_reset_locally", 0x5E: "zwave_plus_info", 0x60: "multi_channel", 0x62: "door_lock",
	0x6C: "supervision", 0x70: "configuration", 0x71: "notification", 0x72: "manufacturer_specific",
	0x73: "powerlevel", 0x7A: "firmware_update", 0x80: "battery", 0x84: "wake_up", 0x85: "association",
	0x86: "version", 0x8E: "multi_channel_association", 0x98: "security", 0x9F: "security_2",
}
