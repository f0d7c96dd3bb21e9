package modbus

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gridx "github.com/grid-x/modbus"

	"github.com/osgate/osgate/drivers/core"
)

// TestWrite writes each kind of writable channel and reads the raw
// registers back from the server with a bare grid-x client, comparing them
// with the bytes the Modbus spec and the channel's order call for.
func TestWrite(t *testing.T) {
	p := startPeer(t, peerOpts{tcp: true})
	w := func(name, s string) *core.Channel {
		c := ch(name, s)
		c.Writable = true
		return c
	}
	d := dev("plc", 1,
		w("u16", `{"register":"holding","address":100}`),
		w("i32", `{"register":"holding","address":101,"type":"int32","order":"CDAB"}`),
		w("f32", `{"register":"holding","address":103,"type":"float32","order":"DCBA"}`),
		w("f64", `{"register":"holding","address":105,"type":"float64","order":"BADC"}`),
		w("str", `{"register":"holding","address":110,"type":"string","length":6}`),
		w("flag", `{"register":"holding","address":114,"type":"bit","bit":5}`),
		w("all", `{"register":"holding","address":114}`),
		w("relay", `{"register":"coil","address":8}`),
		ch("ro", `{"register":"holding","address":120}`),
	)
	c := newConn(t, fmt.Sprintf(`{"transport":"tcp","address":%q}`, p.tcp), d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	write := func(name string, v any) {
		t.Helper()
		if err := c.Write(ctx, d, name, v); err != nil {
			t.Fatalf("Write %s=%v: %v", name, v, err)
		}
	}
	write("u16", int64(4660))
	write("i32", int64(-2))
	write("f32", 1.5)
	write("f64", float64(-2))
	write("str", "AB-7")
	write("all", int64(0x00FF))
	write("flag", false)
	write("relay", true)

	h := gridx.NewTCPClientHandler(p.tcp)
	h.SetSlave(1)
	h.Timeout = 10 * time.Second
	defer h.Close()
	raw := gridx.NewClient(h)
	regs, err := raw.ReadHoldingRegisters(ctx, 100, 15)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	want := []byte{
		0x12, 0x34, // 100: 4660
		0xFF, 0xFE, 0xFF, 0xFF, // 101-102: -2 = FFFF FFFE, low word (FFFE) first
		0x00, 0x00, 0xC0, 0x3F, // 103-104: 1.5 = 3FC0 0000, little-endian
		0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 105-108: -2.0 = C000 0000 0000 0000, bytes swapped
		0, 0, // 109
		'A', 'B', '-', '7', 0, 0, // 110-112
		0, 0, // 113
		0x00, 0xDF, // 114: 0x00FF with bit 5 cleared
	}
	if !bytes.Equal(regs, want) {
		t.Fatalf("server holds\n% x\nwant\n% x", regs, want)
	}
	coils, err := raw.ReadCoils(ctx, 8, 1)
	if err != nil || coils[0]&1 != 1 {
		t.Fatalf("coil 8: % x %v, want on", coils, err)
	}
	// And the driver reads back what it wrote.
	rs := pollOK(t, c, d)
	for name, v := range map[string]any{"u16": int64(4660), "i32": int64(-2), "f32": 1.5, "f64": -2.0, "str": "AB-7", "flag": false, "all": int64(0xDF), "relay": true} {
		if rs[name].Value != v {
			t.Errorf("%s reads %v, wrote %v", name, rs[name].Value, v)
		}
	}

	for _, bad := range []struct {
		name string
		v    any
		msg  string
	}{
		{"ro", int64(1), "not writable"},
		{"nope", int64(1), "no channel"},
		{"u16", int64(70000), "out of range"},
		{"u16", "x", "takes a number"},
		{"str", "too long!", "longer"},
		{"relay", 0.5, "true/false"},
	} {
		err := c.Write(ctx, d, bad.name, bad.v)
		if err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("Write %s=%v: %v, want an error saying %q", bad.name, bad.v, err, bad.msg)
		}
	}
	if got, _ := raw.ReadHoldingRegisters(ctx, 120, 1); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("refused write reached the server: % x", got)
	}
}
