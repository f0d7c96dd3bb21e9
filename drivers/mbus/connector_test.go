package mbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

func testConfig(settings string, devices ...*core.Device) core.ConnectorConfig {
	return core.ConnectorConfig{Name: "mbus-test", Type: "mbus", Settings: json.RawMessage(settings), Devices: devices}
}

func channel(name, settings string) *core.Channel {
	return &core.Channel{Name: name, Settings: json.RawMessage(settings)}
}

func TestRegistered(t *testing.T) {
	if _, ok := core.Lookup("mbus"); !ok {
		t.Fatal("connector type mbus is not registered")
	}
}

func TestNewReportsEveryError(t *testing.T) {
	dev := &core.Device{Name: "m", Settings: json.RawMessage(`{"address": 251, "adress": 1}`), Channels: []*core.Channel{
		channel("a", `{}`),
		channel("b", `{"quantity": "Energy", "record": 1}`),
		channel("c", `{"quantity": "Energy", "function": "average", "storage": -1}`),
	}}
	_, err := New(testConfig(`{"port": "no-such-port", "baud": 2401, "parity": "mark", "retries": 11}`, dev))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"settings.port: board: port name \"no-such-port\" needs a board profile",
		"settings.baud: 2401 is not an M-Bus baud rate",
		"settings.parity:",
		"settings.retries:",
		"devices[0].address: address \"251\"",
		"devices[0].adress",
		"devices[0].channels[0]: say which record",
		"devices[0].channels[1]: give either",
		"devices[0].channels[2].function: \"average\"",
		"devices[0].channels[2].storage: -1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	_, err = New(testConfig(`{}`))
	if err == nil || !strings.Contains(err.Error(), "settings.port") {
		t.Errorf("missing port: %v", err)
	}
}

// New does no I/O: a port that does not exist is only opened by Poll.
func TestNewDoesNoIO(t *testing.T) {
	dev := &core.Device{Name: "m", Settings: json.RawMessage(`{"address": "12345678"}`), Channels: []*core.Channel{channel("e", `{"quantity": "energy"}`)}}
	c, err := New(testConfig(`{"port": "/dev/osgate-no-such-tty"}`, dev))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.(core.Poller).Poll(testCtx(t), dev)
	if err == nil || !strings.Contains(err.Error(), "/dev/osgate-no-such-tty") {
		t.Fatalf("poll of a missing port: %v", err)
	}
}

func TestPoll(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex", "--slave", "9=counter:12345678")
	heat := &core.Device{Name: "heat", Settings: json.RawMessage(`{"address": 5}`), Channels: []*core.Channel{
		channel("energy", `{"quantity": "Energy"}`),
		channel("volume", `{"record": 1}`),
		channel("flow_temp", `{"quantity": "flow temperature"}`),
		channel("power_error", `{"quantity": "Power", "function": "error"}`),
		channel("mass", `{"quantity": "Mass"}`),
		channel("energy_last_year", `{"quantity": "Energy", "storage": 8}`),
	}}
	counter := &core.Device{Name: "counter", Settings: json.RawMessage(`{"address": "12345678"}`), Channels: []*core.Channel{
		channel("energy", `{"quantity": "Energy"}`),
		channel("clock", `{"quantity": "Time point (date & time)"}`),
	}}
	c, err := New(testConfig(`{"port": "`+p.Path+`", "baud": 9600, "parity": "none", "timeout": "1500ms"}`, heat, counter))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	poller := c.(core.Poller)
	ctx := testCtx(t)

	rs, err := poller.Poll(ctx, heat)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		value any
		unit  string
	}{
		{0.0, "Wh"}, {0.0742, "m^3"}, {20.4, "°C"}, {ErrInvalidValue, ""}, {ErrNoRecord, ""}, {ErrNoRecord, ""}}
	if len(rs) != len(want) {
		t.Fatalf("%d readings, want %d", len(rs), len(want))
	}
	for i, w := range want {
		r := rs[i]
		if r.Device != "heat" || r.Channel != heat.Channels[i].Name {
			t.Errorf("reading %d is %s/%s", i, r.Device, r.Channel)
		}
		// The meter sends its power during the error state as BCD with
		// hex digits: not a number (EN 13757-3 Annex A, type A).
		if want, isErr := w.value.(error); isErr {
			if r.Quality != core.Bad || !errors.Is(r.Err, want) || r.Value != nil {
				t.Errorf("%s: want Bad with %v, got %+v", r.Channel, want, r)
			}
			continue
		}
		ok := r.Value == w.value
		if f, isNum := r.Value.(float64); isNum {
			wf, _ := w.value.(float64)
			ok = near(f, wf)
		}
		if r.Quality != core.Good || r.Unit != w.unit || !ok {
			t.Errorf("%s: got %v %s (%v), want %v %s", r.Channel, r.Value, r.Unit, r.Quality, w.value, w.unit)
		}
	}

	// The synthetic meter's energy grows by 10 Wh a second.
	first := pollEnergy(t, poller, counter)
	deadline := time.Now().Add(30 * time.Second)
	for {
		e := pollEnergy(t, poller, counter)
		if e > first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("energy stuck at %v Wh", e)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func pollEnergy(t *testing.T, p core.Poller, d *core.Device) float64 {
	t.Helper()
	rs, err := p.Poll(testCtx(t), d)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Quality != core.Good || rs[0].Unit != "Wh" || rs[0].Value.(float64) < 100000 {
		t.Fatalf("energy reading %+v", rs[0])
	}
	if s, ok := rs[1].Value.(string); !ok || !strings.HasPrefix(s, "20") || rs[1].Unit != "" {
		t.Fatalf("clock reading %+v", rs[1])
	}
	return rs[0].Value.(float64)
}

func TestPollUnreachable(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex")
	dev := &core.Device{Name: "gone", Settings: json.RawMessage(`{"address": 7}`), Channels: []*core.Channel{channel("e", `{"quantity": "Energy"}`)}}
	c, err := New(testConfig(`{"port": "`+p.Path+`", "baud": 9600, "parity": "none", "timeout": "300ms", "retries": 0}`, dev))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.(core.Poller).Poll(testCtx(t), dev)
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("got %v, want ErrNoReply", err)
	}
}

func TestCommands(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex")
	c, err := New(testConfig(`{"port": "` + p.Path + `", "baud": 9600, "parity": "none", "timeout": "1500ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmds := c.(core.Commander).Commands()
	res, err := cmds["scan"].Run(testCtx(t), json.RawMessage(`{"mode": "primary", "first": 4, "last": 6}`))
	if err != nil {
		t.Fatal(err)
	}
	sr := res.(*ScanResult)
	if len(sr.Meters) != 1 || sr.Meters[0].Address != "5" || sr.Devices[0].Name != "hyd-26718590" {
		t.Fatalf("scan: %+v", sr)
	}
	if _, err := cmds["scan"].Run(testCtx(t), json.RawMessage(`{"mode": "all"}`)); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Errorf("bad mode: %v", err)
	}
	res, err = cmds["read"].Run(testCtx(t), json.RawMessage(`{"address": "26718590"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tgs := res.([]*Telegram); len(tgs) != 1 || tgs[0].Header.Manufacturer != "HYD" {
		t.Fatalf("read: %+v", res)
	}
}

func TestCLICommands(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex")
	last := 5
	o := CLIOptions{Baud: 9600, Parity: "none", Timeout: 1500 * time.Millisecond, Scan: ScanOptions{Mode: "primary", First: 4, Last: &last}}
	var out, progress bytes.Buffer
	if err := ScanCommand(testCtx(t), p.Path, o, &out, &progress); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"address": "5"`) || !strings.Contains(progress.String(), "2/2  found 1") {
		t.Errorf("scan output:\n%s\nprogress:\n%q", out.String(), progress.String())
	}
	out.Reset()
	if err := ReadCommand(testCtx(t), p.Path, "5", o, &out); err != nil {
		t.Fatal(err)
	}
	var tgs []Telegram
	if err := json.Unmarshal(out.Bytes(), &tgs); err != nil || len(tgs) != 1 || tgs[0].Header.ID != "26718590" {
		t.Fatalf("read output %v:\n%s", err, out.String())
	}
	if err := ReadCommand(testCtx(t), p.Path, "251", o, &out); err == nil {
		t.Error("address 251 accepted")
	}
}

// A meter that sends its records in two telegrams: channels pick records
// from both, by quantity and by index counted over the readout, poll
// after poll (the device's decoder is reused).
func TestPollMultiTelegram(t *testing.T) {
	t1 := writeFrame(t, "t1.hex", testTelegram("11223344", true, []byte{0x04, 0x03, 0x10, 0x27, 0x00, 0x00}, []byte{0x04, 0x6D, 0x32, 0x37, 0x1F, 0x15}))
	t2 := writeFrame(t, "t2.hex", testTelegram("11223344", false, []byte{0x04, 0x13, 0x20, 0x4E, 0x00, 0x00}))
	p := startSlave(t, "--slave", "7="+t1+","+t2)
	meter := &core.Device{Name: "meter", Settings: json.RawMessage(`{"address": 7}`), Channels: []*core.Channel{
		channel("energy", `{"quantity": "Energy"}`),
		channel("clock", `{"quantity": "Time point (date & time)"}`),
		channel("volume", `{"quantity": "Volume"}`),
		channel("record_3", `{"record": 3}`),
		channel("record_4", `{"record": 4}`),
	}}
	c, err := New(testConfig(`{"port": "`+p.Path+`", "baud": 9600, "parity": "none", "timeout": "1500ms"}`, meter))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []any{10000.0, "2008-05-31T23:50:00Z", 20.0, 20.0, ErrNoRecord}
	for round := 0; round < 3; round++ {
		rs, err := c.(core.Poller).Poll(testCtx(t), meter)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != len(want) {
			t.Fatalf("round %d: %d readings, want %d", round, len(rs), len(want))
		}
		for i, w := range want {
			r := rs[i]
			if werr, isErr := w.(error); isErr {
				if r.Quality != core.Bad || !errors.Is(r.Err, werr) || !strings.Contains(r.Err.Error(), "it has 4 records") {
					t.Errorf("round %d: %s: want Bad with %v, got %+v", round, r.Channel, werr, r)
				}
				continue
			}
			if r.Quality != core.Good || r.Value != w {
				t.Errorf("round %d: %s: got %v (%v), want %v", round, r.Channel, r.Value, r.Quality, w)
			}
		}
	}
}
