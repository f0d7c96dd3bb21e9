package zwave

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

func dev(name string, node int, interval time.Duration, channels ...string) *core.Device {
	d := &core.Device{Name: name, Interval: interval, Timeout: 30 * time.Second,
		Settings: json.RawMessage(`{"node_id":` + strconv.Itoa(node) + `}`)}
	for _, ch := range channels {
		d.Channels = append(d.Channels, &core.Channel{Name: ch, Writable: strings.HasPrefix(ch, "switch") || strings.HasPrefix(ch, "level"), Settings: json.RawMessage(`{}`)})
	}
	return d
}

func newTestConnector(t *testing.T, tty string, devs ...*core.Device) *Connector {
	t.Helper()
	return newTestConnectorIn(t, tty, t.TempDir(), devs...)
}

// newTestConnectorIn is newTestConnector with the gateway's state dir
// given (network keys and node records live there).
func newTestConnectorIn(t *testing.T, tty, stateDir string, devs ...*core.Device) *Connector {
	t.Helper()
	set, _ := json.Marshal(map[string]any{"port": tty, "report_timeout": "10s", "dead_backoff": "30s"})
	c, err := New(core.ConnectorConfig{Name: "zw", Type: "zwave", Settings: set, Devices: devs, StateDir: stateDir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	must(t, err, "New")
	t.Cleanup(func() { c.(*Connector).Close() })
	return c.(*Connector)
}

// listen runs Listen until the test ends and collects its readings.
type collector struct {
	mu sync.Mutex
	rs []core.Reading
}

func (k *collector) find(device, channel string) []core.Reading {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []core.Reading
	for _, r := range k.rs {
		if r.Device == device && r.Channel == channel {
			out = append(out, r)
		}
	}
	return out
}

func listen(t *testing.T, c *Connector) *collector {
	k := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Listen(ctx, core.PerReading(func(r core.Reading) error {
			k.mu.Lock()
			k.rs = append(k.rs, r)
			k.mu.Unlock()
			return nil
		}))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen returned %v, want context.Canceled", err)
		}
	})
	return k
}

func pollOne(t *testing.T, c *Connector, d *core.Device, channel string) core.Reading {
	t.Helper()
	rs, err := c.Poll(testCtx(t, 60*time.Second), d)
	must(t, err, "poll %s", d.Name)
	for _, r := range rs {
		if r.Channel == channel {
			if r.Quality != core.Good {
				t.Fatalf("poll %s: %s is %s: %v", d.Name, channel, r.Quality, r.Err)
			}
			if r.Device != d.Name {
				t.Fatalf("poll %s: reading of device %q", d.Name, r.Device)
			}
			return r
		}
	}
	t.Fatalf("poll %s: no %s among %+v", d.Name, channel, rs)
	return core.Reading{}
}

// TestMockNetwork runs the driver against the zwave-js mock controller
// through a pty: reports, polls, writes, a dead node and the commands.
func TestMockNetwork(t *testing.T) {
	m := startMock(t, "ZW_UNSOLICITED_MS=400", "ZW_PENDING_NODE=6", "ZW_TS_DROP=1")
	tty := startPTY(t, m.addr)
	temp := dev("temp", 2, time.Hour, "air_temperature")
	meter := dev("meter", 3, 0, "electric_kwh", "electric_w")
	relay := dev("relay", 4, 0, "switch")
	dimmer := dev("dimmer", 5, 0, "level")
	dead := dev("dead", 7, 0, "switch")
	twin := dev("twin", 8, 0, "switch_ep1", "switch_ep2")
	c := newTestConnector(t, tty, temp, meter, relay, dimmer, dead, twin)
	k := listen(t, c)

	t.Run("unsolicited temperature reports", func(t *testing.T) {
		// The sensor's value changes every second: wait for two values.
		waitFor(t, 60*time.Second, "two different unsolicited temperatures", func() bool {
			seen := map[float64]bool{}
			for _, r := range k.find("temp", "air_temperature") {
				seen[r.Value.(float64)] = true
			}
			return len(seen) >= 2
		})
		for _, r := range k.find("temp", "air_temperature") {
			v := r.Value.(float64)
			if r.Unit != "°C" || r.Quality != core.Good || v < 20 || v >= 30 {
				t.Fatalf("reading %+v: want 20..30 °C, good", r)
			}
		}
	})

	t.Run("unsolicited reports of an unconfigured node", func(t *testing.T) {
		want := []core.Reading{
			{Channel: "battery", Value: int64(87), Unit: "%"},
			{Channel: "battery_low", Value: false},
			{Channel: "binary_motion", Value: true},
			{Channel: "notification_home_security", Value: int64(8)},
			{Channel: "electric_kvarh", Value: 12.5, Unit: "kvarh"},
		}
		for _, w := range want {
			waitFor(t, time.Minute, "zwave-node-9 "+w.Channel, func() bool { return len(k.find("zwave-node-9", w.Channel)) > 0 })
			r := k.find("zwave-node-9", w.Channel)[0]
			if r.Value != w.Value || r.Unit != w.Unit || r.Quality != core.Good {
				t.Errorf("%s: %+v, want %v %s", w.Channel, r, w.Value, w.Unit)
			}
		}
	})

	t.Run("supervised report answered", func(t *testing.T) {
		// Node 9 sends CO2 inside a Supervision Get: the value is exported
		// and the node gets a Supervision Report with its session and
		// "success" (the mock logs what it received).
		waitFor(t, time.Minute, "co2_level of node 9", func() bool { return len(k.find("zwave-node-9", "co2_level")) > 0 })
		if r := k.find("zwave-node-9", "co2_level")[0]; r.Value != 450.0 || r.Unit != "ppm" {
			t.Fatalf("co2_level %+v, want 450 ppm", r)
		}
		waitFor(t, 30*time.Second, "node 9 received a Supervision Report", func() bool {
			return regexp.MustCompile(`node 9 received SupervisionCCReport\[session \d+ Success\]`).MatchString(m.log.String())
		})
	})

	t.Run("CRC-16 report", func(t *testing.T) {
		waitFor(t, time.Minute, "humidity of node 9", func() bool { return len(k.find("zwave-node-9", "humidity")) > 0 })
		if r := k.find("zwave-node-9", "humidity")[0]; r.Value != 55.0 || r.Unit != "%" {
			t.Fatalf("humidity %+v, want 55 %%", r)
		}
	})

	t.Run("segmented report reassembled", func(t *testing.T) {
		// Node 9 sends illuminance in three Transport Service segments;
		// the first time it holds the middle one back until asked.
		waitFor(t, time.Minute, "illuminance of node 9", func() bool { return len(k.find("zwave-node-9", "illuminance")) > 0 })
		if r := k.find("zwave-node-9", "illuminance")[0]; r.Value != 1234.0 || r.Unit != "lx" {
			t.Fatalf("illuminance %+v, want 1234 lx", r)
		}
		for _, want := range []string{"node 9 holds back segment", "node 9 resends segment", "node 9 received TransportServiceCCSegmentComplete"} {
			waitFor(t, 10*time.Second, "mock log line "+want, func() bool { return strings.Contains(m.log.String(), want) })
		}
	})

	t.Run("poll skips a channel that reported within the interval", func(t *testing.T) {
		rs, err := c.Poll(testCtx(t, 60*time.Second), temp)
		must(t, err, "poll temp")
		if len(rs) != 0 {
			t.Fatalf("poll of a node that reports on its own gave %+v, want nothing", rs)
		}
	})

	t.Run("poll meter", func(t *testing.T) {
		kwh := pollOne(t, c, meter, "electric_kwh")
		if v := kwh.Value.(float64); kwh.Unit != "kWh" || v < 1234.5 || v > 1300 {
			t.Fatalf("electric_kwh %+v, want ≈1234.5 kWh", kwh)
		}
		w := pollOne(t, c, meter, "electric_w")
		if v := w.Value.(float64); w.Unit != "W" || v < 1000 || v >= 1060 {
			t.Fatalf("electric_w %+v, want 1000..1059 W", w)
		}
	})

	t.Run("poll temperature of a silent sensor", func(t *testing.T) {
		silent := dev("temp", 2, time.Nanosecond, "air_temperature")
		r := pollOne(t, c, silent, "air_temperature")
		if v := r.Value.(float64); r.Unit != "°C" || v < 20 || v >= 30 {
			t.Fatalf("air_temperature %+v", r)
		}
	})

	t.Run("write relay and read it back", func(t *testing.T) {
		for _, on := range []bool{true, false, true} {
			must(t, c.Write(testCtx(t, 60*time.Second), relay, "switch", on), "write switch %v", on)
			if r := pollOne(t, c, relay, "switch"); r.Value != on {
				t.Fatalf("switch reads %v after writing %v", r.Value, on)
			}
		}
	})

	t.Run("write dimmer and read it back", func(t *testing.T) {
		must(t, c.Write(testCtx(t, 60*time.Second), dimmer, "level", int64(42)), "write level")
		waitFor(t, 60*time.Second, "dimmer at 42", func() bool {
			return pollOne(t, c, dimmer, "level").Value == int64(42)
		})
		if err := c.Write(testCtx(t, time.Minute), dimmer, "level", int64(120)); err == nil {
			t.Fatal("level 120 was accepted")
		}
	})

	t.Run("multi channel endpoint", func(t *testing.T) {
		for _, on := range []bool{true, false} {
			must(t, c.Write(testCtx(t, time.Minute), twin, "switch_ep2", on), "write switch_ep2 %v", on)
			if r := pollOne(t, c, twin, "switch_ep2"); r.Value != on {
				t.Fatalf("switch_ep2 reads %v after writing %v", r.Value, on)
			}
		}
	})

	t.Run("dead node", func(t *testing.T) {
		// A poll that gives up before the stick reports the transmission...
		short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Poll(short, dead)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("poll of a silent node with a short deadline: %v", err)
		}
		// ...leaves the bus usable: the next request waits for the stick
		// instead of finding it busy...
		pollOne(t, c, relay, "switch")
		// ...and the node is marked dead when the stick reports no ACK.
		waitFor(t, time.Minute, "node 7 marked dead", func() bool { return c.isDead(7) })

		// While its back-off runs, polling the dead node does not touch the
		// bus: even with a context that is already done, the answer is
		// "dead", not a cancelled wait for the stick...
		gone, cancelGone := context.WithCancel(context.Background())
		cancelGone()
		_, err = c.Poll(gone, dead)
		if err == nil || !strings.Contains(err.Error(), "is dead") {
			t.Fatalf("poll of the dead node: %v, want 'is dead'", err)
		}
		// ...and the others go on.
		pollOne(t, c, relay, "switch")
		// A write is always tried, and says why it failed.
		if err := c.Write(testCtx(t, time.Minute), dead, "switch", true); !errors.Is(err, errNoAck) {
			t.Fatalf("write to a dead node: %v, want no ACK", err)
		}
		res, err := c.Commands()["nodes"].Run(testCtx(t, 2*time.Minute), nil)
		must(t, err, "nodes")
		for _, n := range res.([]NodeStatus) {
			if n.NodeID == 7 && !n.Dead {
				t.Errorf("nodes lists node 7 as alive: %+v", n)
			}
		}
	})

	t.Run("nodes", func(t *testing.T) {
		res, err := c.Commands()["nodes"].Run(testCtx(t, 2*time.Minute), json.RawMessage(`{}`))
		must(t, err, "nodes")
		nodes := res.([]NodeStatus)
		byID := map[int]NodeStatus{}
		for _, n := range nodes {
			byID[n.NodeID] = n
		}
		for id, want := range map[int]string{2: "sensor_multilevel", 3: "meter", 4: "switch_binary", 5: "switch_multilevel"} {
			n, ok := byID[id]
			if !ok || !contains(n.CommandClasses, want) {
				t.Errorf("node %d: %+v, want command class %s", id, n, want)
			}
		}
		if !byID[1].Controller || byID[2].Device != "temp" {
			t.Errorf("nodes: %+v", nodes)
		}
	})

	t.Run("include", func(t *testing.T) {
		res, err := c.Commands()["include"].Run(testCtx(t, 2*time.Minute), json.RawMessage(`{"timeout":"30s"}`))
		must(t, err, "include")
		jr := res.(JoinResult)
		if jr.NodeID != 6 || jr.Status != "included" || !contains(jr.CommandClasses, "switch_binary") || !contains(jr.CommandClasses, "association") {
			t.Fatalf("include: %+v, want node 6 with switch_binary and association, lifeline set", jr)
		}
		// The new node is usable at once, under its discovered name.
		res, err = c.Commands()["nodes"].Run(testCtx(t, 2*time.Minute), nil)
		must(t, err, "nodes")
		found := false
		for _, n := range res.([]NodeStatus) {
			found = found || (n.NodeID == 6 && n.Device == "zwave-node-6")
		}
		if !found {
			t.Fatalf("nodes after inclusion: %+v", res)
		}
	})

	t.Run("configuration parameter set and read back", func(t *testing.T) {
		run := func(params string) (ConfigValue, error) {
			res, err := c.Commands()["config_set"].Run(testCtx(t, time.Minute), json.RawMessage(params))
			if err != nil {
				return ConfigValue{}, err
			}
			return res.(ConfigValue), nil
		}
		got, err := run(`{"node": 4, "parameter": 1, "value": 42, "size": 1}`)
		must(t, err, "config_set")
		if got != (ConfigValue{NodeID: 4, Parameter: 1, Size: 1, Value: 42}) {
			t.Fatalf("config_set read back %+v", got)
		}
		// Without a size the driver reads the parameter's size first.
		got, err = run(`{"node": 4, "parameter": 2, "value": -500}`)
		must(t, err, "config_set")
		if got.Size != 2 || got.Value != -500 {
			t.Fatalf("config_set of a 2-byte parameter read back %+v", got)
		}
		res, err := c.Commands()["config_get"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 4, "parameter": 1}`))
		must(t, err, "config_get")
		if res.(ConfigValue).Value != 42 {
			t.Fatalf("config_get %+v", res)
		}
		// The node refuses a value out of its range: a supervised set
		// says so.
		if _, err := run(`{"node": 4, "parameter": 1, "value": 100, "size": 1}`); !errors.Is(err, errSupFail) {
			t.Fatalf("out-of-range value: %v, want the node's refusal", err)
		}
		for _, bad := range []string{`{"node": 4, "parameter": 1, "value": 300, "size": 1}`, `{"node": 4, "parameter": 1, "value": 1, "size": 3}`,
			`{"node": 99, "parameter": 1, "value": 1}`, `{"node": 4, "value": 1}`} {
			if _, err := run(bad); err == nil {
				t.Errorf("config_set %s accepted", bad)
			}
		}
	})

	t.Run("association groups", func(t *testing.T) {
		res, err := c.Commands()["associate"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 4, "group": 2, "add": [1, 5]}`))
		must(t, err, "associate")
		if g := res.(AssociationGroup); g.Group != 2 || fmt.Sprint(g.Nodes) != "[1 5]" {
			t.Fatalf("associate: %+v", g)
		}
		res, err = c.Commands()["associate"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 4, "group": 2, "remove": [5]}`))
		must(t, err, "associate remove")
		if g := res.(AssociationGroup); fmt.Sprint(g.Nodes) != "[1]" {
			t.Fatalf("associate remove: %+v", g)
		}
		res, err = c.Commands()["associations"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 4}`))
		must(t, err, "associations")
		gs := res.([]AssociationGroup)
		if len(gs) != 2 || gs[1].Group != 2 || fmt.Sprint(gs[1].Nodes) != "[1]" || gs[1].MaxNodes != 5 {
			t.Fatalf("associations: %+v", gs)
		}
	})

	t.Run("interview", func(t *testing.T) {
		res, err := c.Commands()["interview"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 4}`))
		must(t, err, "interview")
		iv := res.(*Interview)
		if iv.ManufacturerID != "0x0086" || iv.ProductType != "0x0003" || iv.ProductID != "0x0060" || iv.Firmware != "1.12" ||
			iv.ZWavePlus == nil || iv.ZWavePlus.RoleType != "always_on_slave" || len(iv.Errors) != 0 {
			t.Fatalf("interview: %+v (zwave plus %+v)", iv, iv.ZWavePlus)
		}
		// Kept, and shown by nodes.
		res, err = c.Commands()["nodes"].Run(testCtx(t, 2*time.Minute), nil)
		must(t, err, "nodes")
		for _, n := range res.([]NodeStatus) {
			if n.NodeID == 4 && (n.Interview == nil || n.Interview.ManufacturerID != "0x0086") {
				t.Fatalf("nodes shows node 4 without its interview: %+v", n)
			}
		}
	})

	t.Run("remove failed node", func(t *testing.T) {
		// The stick keeps a node that answers...
		if _, err := c.Commands()["remove_failed"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 4}`)); !errors.Is(err, errNodeAnswers) {
			t.Fatalf("remove_failed of a working node: %v", err)
		}
		// ...and removes the dead one.
		res, err := c.Commands()["remove_failed"].Run(testCtx(t, time.Minute), json.RawMessage(`{"node": 7}`))
		must(t, err, "remove_failed")
		if res.(RemoveResult).Status != "removed" {
			t.Fatalf("remove_failed: %+v", res)
		}
		res, err = c.Commands()["nodes"].Run(testCtx(t, 2*time.Minute), nil)
		must(t, err, "nodes")
		for _, n := range res.([]NodeStatus) {
			if n.NodeID == 7 {
				t.Fatalf("node 7 still listed after its removal: %+v", n)
			}
		}
	})

	t.Run("exclude times out without a node", func(t *testing.T) {
		res, err := c.Commands()["exclude"].Run(testCtx(t, 2*time.Minute), json.RawMessage(`{"timeout":"1s"}`))
		must(t, err, "exclude")
		jr := res.(JoinResult)
		if jr.NodeID != 0 || !strings.HasPrefix(jr.Status, "no node") {
			t.Fatalf("exclude: %+v", jr)
		}
		if _, err := c.Commands()["exclude"].Run(testCtx(t, time.Minute), json.RawMessage(`{"timeout":"1s","bogus":1}`)); err == nil {
			t.Fatal("exclude accepted an unknown parameter")
		}
	})
}
