package zwave

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
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
	set, _ := json.Marshal(map[string]any{"port": tty, "report_timeout": "10s", "dead_backoff": "30s"})
	c, err := New(core.ConnectorConfig{Name: "zw", Type: "zwave", Settings: set, Devices: devs,
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
	m := startMock(t, "ZW_UNSOLICITED_MS=400", "ZW_PENDING_NODE=6")
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
