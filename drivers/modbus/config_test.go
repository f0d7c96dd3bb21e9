package modbus

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, settings string
		devs           []*core.Device
		want           []string // every line of the error, in order
	}{
		{"unknown transport", `{"transport":"udp","address":"h:1"}`, nil,
			[]string{`settings.transport: must be "tcp", "rtu" or "rtuovertcp", not "udp"`}},
		{"missing transport and typo", `{"adress":"h:502"}`, nil,
			[]string{`settings.adress: unknown field (did you mean "address"?)`}},
		{"no transport", `{}`, nil,
			[]string{`settings.transport: is required: "tcp", "rtu" or "rtuovertcp" (or give only "port" for RTU on a serial line, only "address" for Modbus TCP)`}},
		{"tcp without address", `{"transport":"tcp","baud":9600}`, nil, []string{
			`settings.address: is required for transport "tcp" (host:port, e.g. "192.168.1.20:502")`,
			`settings.baud: is only for transport "rtu" (the serial server sets the line up)`}},
		{"bad host port", `{"transport":"rtuovertcp","address":"10.0.0.1"}`, nil,
			[]string{`settings.address: "10.0.0.1" is not host:port (e.g. "192.168.1.20:502")`}},
		{"enum typos", `{"transport":"rtuovertpc","address":"h:1"}`, nil,
			[]string{`settings.transport: must be "tcp", "rtu" or "rtuovertcp", not "rtuovertpc" (did you mean "rtuovertcp"?)`}},
		{"parity written out", `{"transport":"rtu","port":"/dev/ttyUSB0","baud":9600,"parity":"even"}`, nil,
			[]string{`settings.parity: must be "N", "E" or "O", not "even" (did you mean "E"?)`}},
		{"serial checks", `{"transport":"rtu","port":"ttyUSB0","baud":9601,"data_bits":9,"parity":"X","stop_bits":3,"rs485":{"delay_before_send":"1500us"}}`, nil, []string{
			`settings.baud: 9601 is not a baud rate the serial driver supports (e.g. 9600, 19200, 38400, 115200)`,
			`settings.data_bits: must be 5, 6, 7 or 8, not 9`,
			`settings.parity: must be "N", "E" or "O", not "X"`,
			`settings.port: board: port name "ttyUSB0" needs a board profile (OSGATE_BOARD=NAME; known: pi-uart, usb-rs485, waveshare-rs485-can-hat), or use a device path such as /dev/ttyUSB0`,
			`settings.rs485.delay_before_send: must be whole milliseconds from 0 to 1s (the kernel counts in ms), not 1.5ms`,
			`settings.stop_bits: must be 1 or 2, not 3`}},
		{"timing", `{"transport":"tcp","address":"h:502","timeout":"0s","max_gap":-1,"max_registers":126,"frame_delay":"-1ms"}`, nil, []string{
			`settings.frame_delay: must be from 0 to 10s, not -1ms`,
			`settings.max_gap: must be from 0 to 125 registers, not -1`,
			`settings.max_registers: must be from 1 to 125, not 126`,
			`settings.timeout: must be more than 0 and at most 1m, not 0s`}},
		{"devices and channels", `{"transport":"tcp","address":"h:502","max_registers":10}`, []*core.Device{
			{Name: "a", Settings: json.RawMessage(`{"unit_id":300,"slave":1}`), Channels: []*core.Channel{
				ch("x", `{"register":"holdings","address":1}`),
				ch("y", `{"register":"holding","address":65535,"type":"uint32"}`),
				ch("z", `{"register":"coil","address":1,"type":"int16"}`),
				ch("s", `{"register":"input","type":"string","length":40,"address":0}`),
				ch("b", `{"register":"input","type":"bit","bit":16,"address":0,"order":"ABDC"}`),
				{Name: "w", Writable: true, Settings: json.RawMessage(`{"register":"input","address":3}`)},
				ch("x", `{"register":"holding","address":-1,"length":2}`),
				ch("f", `{"register":"input","address":0,"type":"float","deadbnd":{}}`),
			}},
			{Name: "b", Settings: json.RawMessage(`{}`)},
		}, []string{
			`devices[0].channels[0].register: must be "coil", "discrete", "holding" or "input", not "holdings" (did you mean "holding"?)`,
			`devices[0].channels[1].address: 65535 plus 2 registers runs past the last address 65535`,
			`devices[0].channels[2].type: a coil is one bit: its type is "bool", not "int16"`,
			`devices[0].channels[3].length: needs 20 registers, more than settings.max_registers (10)`,
			`devices[0].channels[4].bit: must be from 0 to 15, not 16`,
			`devices[0].channels[4].order: must be "ABCD", "DCBA", "BADC" or "CDAB", not "ABDC" (did you mean "ABCD"?)`,
			`devices[0].channels[5].writable: an input register cannot be written; only coils and holding registers can`,
			`devices[0].channels[6].address: must be an integer from 0 to 65535, not -1`,
			`devices[0].channels[6].length: is only for type "string"`,
			`devices[0].channels[6].name: channel "x" appears twice in device "a"`,
			`devices[0].channels[7].deadbnd: unknown field`,
			`devices[0].channels[7].type: must be one of bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, not "float" (did you mean "float32"?)`,
			`devices[0].slave: unknown field`,
			`devices[0].unit_id: must be an integer from 0 to 255, not 300`,
			`devices[1].channels: a modbus device needs at least one channel`,
			`devices[1].unit_id: is required`,
		}},
		{"channels that do not decode", `{"transport":"tcp","address":"h:502"}`, []*core.Device{
			{Name: "a", Settings: json.RawMessage(`{"unit_id":1}`), Channels: []*core.Channel{
				ch("x", `{"register":"holding","address":"1"}`),
				ch("y", `{"register":"holding","adress":1}`),
				ch("z", `{"register":"holding","address":3}`),
			}},
		}, []string{
			`devices[0].channels[0].address: must be an integer, not a string`,
			`devices[0].channels[1].address: is required`,
			`devices[0].channels[1].adress: unknown field (did you mean "address"?)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(core.ConnectorConfig{Name: "m", Settings: json.RawMessage(tc.settings), Devices: tc.devs})
			if err == nil {
				t.Fatal("New accepted it")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestSettingsEveryKey: every key is accepted, defaults apply, "_" keys are
// ignored, and New does no I/O (the port does not exist).
func TestSettingsEveryKey(t *testing.T) {
	s := `{"_comment":"RS-485 HAT","port":"/dev/ttyNOPE9","baud":9600,"data_bits":8,"parity":"E","stop_bits":2,
	"rs485":{"rts_on_send":true,"rts_after_send":false,"delay_before_send":"1ms","delay_after_send":"2ms","rx_during_tx":false},
	"timeout":"250ms","max_gap":4,"max_registers":64,"reprobe":"5m"}`
	d := dev("m", 7,
		ch("a", `{"register":"holding","address":10,"type":"float32","order":"cdab","_note":"x"}`),
		ch("b", `{"register":"coil","address":3}`),
		ch("c", `{"register":"input","address":0,"type":"string","length":7}`),
		ch("d", `{"register":"holding","address":1,"type":"bit","bit":15}`))
	c := newConn(t, s, d)
	if c.set.Timeout != 250*time.Millisecond || c.set.MaxGap != 4 || c.linkCfg.parity != "E" || c.linkCfg.stopBits != 2 || !c.linkCfg.useRS485 {
		t.Fatalf("settings not applied: %+v %+v", c.set, c.linkCfg)
	}
	// 3.5 characters of 11 bits at 9600 baud.
	if fd := c.linkCfg.frameDelay; fd < 4*time.Millisecond || fd > 4100*time.Microsecond {
		t.Fatalf("default frame delay at 9600 baud: %s", fd)
	}
	dv := c.devices["m"]
	if dv.unit != 7 || dv.chans[0].order != orderCDAB || dv.chans[1].typ != typeBool || dv.chans[2].width != 4 || dv.chans[3].bit != 15 {
		t.Fatalf("channels: %+v", dv.chans)
	}
}

// FuzzSettings feeds arbitrary connector, device and channel settings to
// New: it returns a connector or an error, and never panics.
func FuzzSettings(f *testing.F) {
	f.Add(`{"transport":"tcp","address":"127.0.0.1:502"}`, `{"unit_id":1}`, `{"register":"holding","address":3,"type":"float32","order":"CDAB"}`)
	f.Add(`{"transport":"rtu","port":"/dev/ttyFUZZ","baud":9600,"rs485":{"delay_before_send":"1ms"}}`, `{"unit_id":247}`, `{"register":"coil","address":0}`)
	f.Add(`{"transport":"rtuovertcp","address":"h:1","max_gap":0,"timeout":"100ms"}`, `{"unit_id":0}`, `{"register":"input","address":65534,"type":"string","length":4}`)
	f.Add(`{`, `[]`, `null`)
	f.Add(`{"transport":"tcp","address":"[::1]:502","frame_delay":"5ms"}`, `{"unit_id":1,"_x":2}`, `{"register":"holding","address":1,"type":"bit","bit":15}`)
	f.Fuzz(func(t *testing.T, settings, device, channel string) {
		d := &core.Device{Name: "d", Settings: json.RawMessage(device), Channels: []*core.Channel{{Name: "c", Settings: json.RawMessage(channel)}}}
		c, err := New(core.ConnectorConfig{Name: "fuzz", Settings: json.RawMessage(settings), Devices: []*core.Device{d}})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		conn := c.(*connector)
		for _, b := range conn.devices["d"].blocks {
			if b.whole.count < 1 || b.whole.count > maxBitsPerRead || len(b.whole.chans) != 1 {
				t.Fatalf("bad plan %v", b.whole)
			}
		}
		c.Close()
	})
}
