package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	_ "github.com/osgate/osgate/drivers/system"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

// The tests below run the whole gateway: a managed Mosquitto it starts
// itself, the export sink, the JSON-RPC service, and connectors. Besides
// the real "system" connector they use two test connectors registered
// here: "test-counter", a device whose channels the test knows exactly
// (a sequence number, a settable value), so every reading can be counted;
// and "test-listener", which reports on its own and fails on purpose.
// They stand in for field devices, not for any peer: the broker, the
// subscriber and the RPC client are real.

const testKey = "test-key-0123456789"

func init() {
	core.Register("test-counter", newCounter)
	core.Register("test-listener", newTestListener)
}

// counter is a test device: every poll returns seq (1, 2, 3, ...), value
// (settable through Write) and raw (seq*10, for transforms).
type counter struct {
	mu       sync.Mutex
	seq      map[string]int64
	value    map[string]float64
	inPoll   atomic.Int32
	overlaps atomic.Int32
	block    chan struct{} // when set, Poll waits on it or ctx
}

var counters sync.Map // connector name -> *counter, for the tests to reach

func newCounter(cfg core.ConnectorConfig) (core.Connector, error) {
	c := &counter{seq: map[string]int64{}, value: map[string]float64{}}
	switch {
	case strings.HasPrefix(cfg.Name, "hang"):
		c.block = make(chan struct{}) // never closed: the device does not answer
	case strings.HasPrefix(cfg.Name, "gated"):
		c.block = make(chan struct{}) // closed by openGate: polls fail until then
	}
	counters.Store(cfg.Name, c)
	return c, nil
}

func (c *counter) Close() error { return nil }

// openGate lets the polls of the "gated..." counter connector name answer:
// a test that must see the first reading subscribes first. Until then its
// polls time out, and a failed poll exports nothing.
func openGate(t *testing.T, name string) {
	t.Helper()
	v, ok := counters.Load(name)
	if !ok {
		t.Fatalf("no counter connector %q", name)
	}
	close(v.(*counter).block)
}

func (c *counter) Poll(ctx context.Context, dev *core.Device) ([]core.Reading, error) {
	if c.inPoll.Add(1) > 1 {
		c.overlaps.Add(1)
	}
	defer c.inPoll.Add(-1)
	if c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	time.Sleep(time.Millisecond) // long enough for overlapping polls to meet
	c.mu.Lock()
	c.seq[dev.Name]++
	s, v := c.seq[dev.Name], c.value[dev.Name]
	c.mu.Unlock()
	now := time.Now()
	return []core.Reading{
		{Device: dev.Name, Channel: "seq", Value: s, Time: now},
		{Device: dev.Name, Channel: "value", Value: v, Unit: "V", Time: now},
		{Device: dev.Name, Channel: "raw", Value: s * 10, Time: now},
		{Device: dev.Name, Channel: "broken", Time: now, Quality: core.Bad, Err: errors.New("exception 2: illegal data address")},
	}, nil
}

func (c *counter) Write(ctx context.Context, dev *core.Device, channel string, v any) error {
	f, ok := v.(float64)
	if !ok || channel != "value" {
		return fmt.Errorf("counter: cannot write %v to %s", v, channel)
	}
	c.mu.Lock()
	c.value[dev.Name] = f
	c.mu.Unlock()
	return nil
}

// testListener emits n readings (seq 1..n) per run, then fails; the core
// must restart it.
type testListener struct {
	runs atomic.Int32
}

var listeners sync.Map

func newTestListener(cfg core.ConnectorConfig) (core.Connector, error) {
	l := &testListener{}
	listeners.Store(cfg.Name, l)
	return l, nil
}

func (l *testListener) Close() error { return nil }

func (l *testListener) Listen(ctx context.Context, emit func(...core.Reading) error) error {
	run := l.runs.Add(1)
	for i := 1; i <= 3; i++ {
		r := core.Reading{Device: "discovered-1", Channel: "n", Value: int64(run)*100 + int64(i), Time: time.Now()}
		if err := emit(r); err != nil {
			return err
		}
	}
	return errors.New("test listener: link lost on purpose")
}

type testGateway struct {
	g      *Gateway
	broker string // URL of the managed broker
	rpcURL string // base URL of the RPC service
	rpc    *rpc.Client
	cancel context.CancelFunc
	done   chan error
	// stopOnce makes stop idempotent (a test's and the cleanup's).
	stopOnce sync.Once
}

// startGateway runs a gateway on cfgJSON, whose "STATE", "BROKER" and "RPC"
// placeholders become a temp dir and free loopback addresses.
func startGateway(t *testing.T, cfgJSON string) *testGateway {
	t.Helper()
	return startGatewayLog(t, cfgJSON, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startGatewayLog is startGateway with the gateway's logger.
func startGatewayLog(t *testing.T, cfgJSON string, log *slog.Logger) *testGateway {
	t.Helper()
	return startGatewayWith(t, cfgJSON, log, nil)
}

// startGatewayWith is startGatewayLog with a function that sets up the
// gateway before it runs (nil: nothing).
func startGatewayWith(t *testing.T, cfgJSON string, log *slog.Logger, setup func(*Gateway)) *testGateway {
	t.Helper()
	bport, rport := testpeer.FreePort(t), testpeer.FreePort(t)
	r := strings.NewReplacer("STATE", t.TempDir(), "BROKER", testpeer.Addr(bport), "RPC", testpeer.Addr(rport), "KEYHASH", apikey.Hash(testKey))
	cfg, err := config.Parse([]byte(r.Replace(cfgJSON)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tg := &testGateway{g: g, broker: "tcp://" + testpeer.Addr(bport), rpcURL: "http://" + testpeer.Addr(rport), cancel: cancel, done: make(chan error, 1)}
	go func() { tg.done <- g.Run(ctx) }()
	t.Cleanup(func() { tg.stop(t) })
	testpeer.WaitTCP(t, testpeer.Addr(rport), 30*time.Second)
	testpeer.WaitTCP(t, testpeer.Addr(bport), 30*time.Second)
	tg.rpc = rpc.NewClient(tg.rpcURL, testKey, nil)
	t.Cleanup(tg.rpc.Close)
	return tg
}

// stop stops the gateway (once) and waits for it.
func (tg *testGateway) stop(t *testing.T) {
	tg.stopOnce.Do(func() {
		tg.cancel()
		select {
		case err := <-tg.done:
			if err != nil {
				t.Errorf("gateway Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("gateway did not stop within 60 s")
		}
	})
}

func (tg *testGateway) call(t *testing.T, method string, params, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tg.rpc.Call(ctx, method, params, result); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

const envelope = `{
  "gateway": {"id": "gw-test", "state_dir": "STATE"},
  "broker": {"listen": "BROKER"},
  "rpc": {"listen": "RPC", "api_keys": [{"name": "test", "sha256": "KEYHASH", "scope": "admin"}]},
  "connectors": [%s]
}`

// payload is an export message as the tests read it.
type payload struct {
	TS      time.Time         `json:"ts"`
	Values  map[string]any    `json:"values"`
	Units   map[string]string `json:"units"`
	Quality map[string]string `json:"quality"`
	Errors  map[string]string `json:"errors"`
}

func decodePayload(t *testing.T, b []byte) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("payload %s: %v", b, err)
	}
	return p
}

// TestDefaultConfigExportsGatewayTelemetry is `make run`: the embedded
// default's one device, the gateway itself, reaches a subscriber of the
// managed broker.
func TestDefaultConfigExportsGatewayTelemetry(t *testing.T) {
	def := config.Default()
	if len(def.Connectors) != 1 || def.Connectors[0].Type != "system" || def.Connectors[0].Devices[0].Interval != 10*time.Second {
		t.Fatalf("embedded default changed: %+v", def.Connectors)
	}
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"system","type":"system","devices":[{"name":"gateway","interval":"1s"}]}`))
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-default", Filter: "telemetry/#"})
	if !sub.WaitDistinct(2, 60*time.Second) {
		t.Fatalf("no telemetry within 60 s (got %d messages)", len(sub.Messages()))
	}
	m := sub.Messages()[0]
	if m.Topic != "telemetry/gw-test/gateway" {
		t.Fatalf("topic %q", m.Topic)
	}
	p := decodePayload(t, m.Payload)
	if up, ok := p.Values["uptime"].(float64); !ok || up <= 0 {
		t.Errorf("uptime %v in %s", p.Values["uptime"], m.Payload)
	}
	if p.Units["uptime"] != "s" || p.Units["memory_used"] != "%" {
		t.Errorf("units %v", p.Units)
	}
	if time.Since(p.TS) > time.Minute || time.Since(p.TS) < 0 {
		t.Errorf("ts %v", p.TS)
	}
}

// TestPipelineTransformsAndQuality checks what one poll becomes on the
// wire: scale and offset, an expression, rename and unit, a deadband that
// holds back an unchanged value, a range filter that drops and counts, and
// a bad channel exported as null with its error.
func TestPipelineTransformsAndQuality(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"gated-c1","type":"test-counter","devices":[{"name":"meter-1","interval":"200ms","channels":[
		{"name":"seq"},
		{"name":"raw","scale":0.5,"offset":1,"rename":"half","unit":"kWh"},
		{"name":"value","deadband":{"absolute":1,"max_silence":"1h"}},
		{"name":"broken"}
	]},{"name":"meter-2","interval":"200ms","channels":[
		{"name":"seq","max":3},
		{"name":"raw","expr":"value > 20 ? 'high' : 'low'"}
	]}]}`))
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-pipe", Filter: "telemetry/gw-test/#",
		Key: func(topic string, b []byte) string {
			var p payload
			json.Unmarshal(b, &p)
			return fmt.Sprintf("%s/%v", topic, p.Values["seq"])
		}})
	// The first reading must be seen (the deadband passes it): the
	// counter answers only once the subscriber is there.
	openGate(t, "gated-c1")
	want := []string{}
	for i := 1; i <= 6; i++ {
		want = append(want, fmt.Sprintf("telemetry/gw-test/meter-1/%d", i))
	}
	if missing := sub.WaitKeys(want, 60*time.Second); len(missing) > 0 {
		t.Fatalf("missing %v", missing)
	}
	for _, m := range sub.Messages() {
		p := decodePayload(t, m.Payload)
		switch m.Topic {
		case "telemetry/gw-test/meter-1":
			seq := p.Values["seq"].(float64)
			if p.Values["half"] != seq*10*0.5+1 || p.Units["half"] != "kWh" {
				t.Errorf("scaled: %s", m.Payload)
			}
			if _, ok := p.Values["raw"]; ok {
				t.Errorf("renamed channel exported under its old name: %s", m.Payload)
			}
			if v, has := p.Values["value"]; (seq == 1) != has || (has && v != 0.0) {
				t.Errorf("deadband: seq %v has value=%v: %s", seq, has, m.Payload)
			}
			if v, has := p.Values["broken"]; !has || v != nil || p.Quality["broken"] != "bad" || !strings.Contains(p.Errors["broken"], "illegal data address") {
				t.Errorf("bad channel: %s", m.Payload)
			}
		case "telemetry/gw-test/meter-2":
			seq, has := p.Values["seq"].(float64)
			if has && seq > 3 {
				t.Errorf("range filter let %v through", seq)
			}
			if (p.Values["raw"] == "high") != (p.Values["raw"] != "low") {
				t.Errorf("expr: %s", m.Payload)
			}
		}
	}
	// The counter keeps counting past the range filter: meter-2 goes on
	// exporting raw without seq.
	ok := false
	for _, m := range sub.Messages() {
		p := decodePayload(t, m.Payload)
		if m.Topic == "telemetry/gw-test/meter-2" && p.Values["raw"] == "high" {
			ok = true
		}
	}
	if !ok {
		// raw = seq*10 > 20 from seq 3 on; wait for it.
		deadline := time.Now().Add(30 * time.Second)
		for !ok && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			for _, m := range sub.Messages() {
				if m.Topic == "telemetry/gw-test/meter-2" && decodePayload(t, m.Payload).Values["raw"] == "high" {
					ok = true
				}
			}
		}
		if !ok {
			t.Error("meter-2 never exported raw=high")
		}
	}
}

// TestRPCMethods calls every GatewayService method over real HTTP with the
// right key, and checks a wrong key and no key are refused.
func TestRPCMethods(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"c1","type":"test-counter","devices":[{"name":"meter-1","interval":"1h","channels":[
		{"name":"seq"},{"name":"value","writable":true,"scale":0.1,"unit":"V"},{"name":"raw"}]}]},
		{"name":"sys","type":"system","devices":[{"name":"gateway","interval":"1h"}]}`))

	var st struct {
		ID      string `json:"id"`
		Version string `json:"version"`
		Health  struct {
			Status     string                  `json:"status"`
			Connectors []struct{ Name string } `json:"connectors"`
		} `json:"health"`
	}
	tg.call(t, "gateway.status", nil, &st)
	if st.ID != "gw-test" || st.Health.Status == "" || len(st.Health.Connectors) != 2 {
		t.Errorf("gateway.status %+v", st)
	}

	var cfg map[string]any
	tg.call(t, "gateway.config", nil, &cfg)
	b, _ := json.Marshal(cfg)
	if strings.Contains(string(b), apikey.Hash(testKey)) || !strings.Contains(string(b), "meter-1") {
		t.Errorf("gateway.config not redacted or incomplete: %s", b)
	}

	var devs []deviceInfo
	tg.call(t, "devices.list", nil, &devs)
	if len(devs) != 2 || devs[0].Name != "meter-1" || devs[0].Connector != "c1" || len(devs[0].Channels) != 3 {
		t.Errorf("devices.list %+v", devs)
	}

	// device.write applies the inverse of the scale: 23.5 V / 0.1 = 235 raw.
	var wr map[string]any
	tg.call(t, "device.write", map[string]any{"device": "meter-1", "channel": "value", "value": 23.5}, &wr)
	if wr["written"] != 235.0 {
		t.Errorf("device.write %v", wr)
	}
	var rd struct {
		Readings []readingJSON `json:"readings"`
	}
	tg.call(t, "device.read", map[string]any{"device": "meter-1"}, &rd)
	got := map[string]any{}
	for _, r := range rd.Readings {
		got[r.Channel] = r.Value
	}
	if got["value"] != 23.5 || got["seq"] == nil {
		t.Errorf("device.read after write: %+v", rd.Readings)
	}
	// Writing a channel that is not writable, or an unknown device, is refused.
	ctx := context.Background()
	var rerr *rpc.Error
	if err := tg.rpc.Call(ctx, "device.write", map[string]any{"device": "meter-1", "channel": "seq", "value": 1}, nil); !errors.As(err, &rerr) || rerr.Code != rpc.CodeInvalidParams {
		t.Errorf("write of read-only channel: %v", err)
	}
	if err := tg.rpc.Call(ctx, "device.read", map[string]any{"device": "nope"}, nil); !errors.As(err, &rerr) || rerr.Code != rpc.CodeInvalidParams {
		t.Errorf("read of unknown device: %v", err)
	}

	var conns []connectorInfo
	tg.call(t, "connectors.list", nil, &conns)
	if len(conns) != 2 || conns[0].Name != "c1" || conns[0].Kind != "poller" || conns[1].Type != "system" {
		t.Errorf("connectors.list %+v", conns)
	}
	before := conns[0].Started
	tg.call(t, "connectors.restart", map[string]any{"name": "c1"}, nil)
	tg.call(t, "connectors.list", nil, &conns)
	if conns[0].Started == before {
		t.Errorf("connectors.restart did not restart c1: %+v", conns)
	}

	for _, key := range []string{"wrong-key", ""} {
		c := rpc.NewClient("http://"+tg.g.rpcAddr, key, nil)
		err := c.Call(ctx, "gateway.status", nil, nil)
		c.Close()
		if !errors.Is(err, rpc.ErrUnauthorized) {
			t.Errorf("key %q: %v, want unauthorized", key, err)
		}
	}
}

// TestNeverTwoPollsAtOnce hammers device.read while the scheduler polls
// the same device every 10 ms: the driver must never see two polls of one
// device at once.
func TestNeverTwoPollsAtOnce(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"overlap","type":"test-counter","devices":[{"name":"d-overlap","interval":"10ms"}]}`))
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				tg.call(t, "device.read", map[string]any{"device": "d-overlap"}, nil)
			}
		}()
	}
	wg.Wait()
	v, _ := counters.Load("overlap")
	c := v.(*counter)
	c.mu.Lock()
	polls := c.seq["d-overlap"]
	c.mu.Unlock()
	if polls < 100 {
		t.Fatalf("only %d polls", polls)
	}
	if n := c.overlaps.Load(); n != 0 {
		t.Fatalf("%d overlapping polls of one device", n)
	}
}

// TestPollTimeout: a device that does not answer gets its poll cancelled at
// the device's timeout, is reported in devices.list, and the gateway's
// health names the failing connector.
func TestPollTimeout(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"hang","type":"test-counter","devices":[{"name":"d-hang","interval":"300ms","timeout":"100ms"}]},
		{"name":"sys","type":"system","devices":[{"name":"gateway","interval":"1s"}]}`))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var devs []deviceInfo
		tg.call(t, "devices.list", nil, &devs)
		if devs[0].Failures >= 1 && strings.Contains(devs[0].LastError, "deadline") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeout never reported: %+v", devs[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep := tg.g.health.Report()
	if rep.Status == "ok" {
		t.Errorf("health ok with a hanging device: %+v", rep)
	}
}

// TestListenerRestarted: a listener that fails is restarted with back-off,
// and what it reported before and after reaches the broker under its
// discovered device name.
func TestListenerRestarted(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"l1","type":"test-listener"}`))
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-listen", Filter: "telemetry/gw-test/discovered-1"})
	// The subscriber may join after the first run: wait for two runs whose
	// three readings all arrived, each run a restart of the listener.
	deadline := time.Now().Add(60 * time.Second)
	for {
		perRun := map[int]map[int]bool{}
		for _, m := range sub.Messages() {
			n := int(decodePayload(t, m.Payload).Values["n"].(float64))
			if perRun[n/100] == nil {
				perRun[n/100] = map[int]bool{}
			}
			perRun[n/100][n%100] = true
		}
		complete := 0
		for _, got := range perRun {
			if len(got) == 3 {
				complete++
			}
		}
		if complete >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than two complete listener runs arrived: %v", perRun)
		}
		time.Sleep(100 * time.Millisecond)
	}
	v, _ := listeners.Load("l1")
	if runs := v.(*testListener).runs.Load(); runs < 2 {
		t.Fatalf("listener ran %d times", runs)
	}
}

// TestListenerBatches: readings emitted together become one message per
// device, and a channel repeated in one emit goes into a second message
// rather than a duplicate JSON key.
func TestListenerBatches(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"b1","type":"test-batch"}`))
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-batch", Filter: "telemetry/gw-test/+"})
	v, _ := batchers.Load("b1")
	b := v.(*batchListener)
	now := time.Now()
	b.send <- []core.Reading{
		{Device: "dev-a", Channel: "x", Value: 1.0, Time: now},
		{Device: "dev-b", Channel: "y", Value: 2.0, Time: now},
		{Device: "dev-a", Channel: "z", Value: 3.0, Time: now},
		{Device: "dev-a", Channel: "x", Value: 4.0, Time: now},
	}
	if !sub.WaitDistinct(3, 60*time.Second) {
		t.Fatalf("got %d messages", len(sub.Messages()))
	}
	time.Sleep(200 * time.Millisecond) // a fourth message would be a bug
	var got []string
	for _, m := range sub.Messages() {
		got = append(got, m.Topic+" "+string(m.Payload[strings.Index(string(m.Payload), `"values"`):strings.Index(string(m.Payload), `}`)+1]))
	}
	want := []string{
		`telemetry/gw-test/dev-a "values":{"x":1,"z":3}`,
		`telemetry/gw-test/dev-b "values":{"y":2}`,
		`telemetry/gw-test/dev-a "values":{"x":4}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// batchListener emits what the test sends it, as one emit call each.
type batchListener struct{ send chan []core.Reading }

var batchers sync.Map

func init() {
	core.Register("test-batch", func(cfg core.ConnectorConfig) (core.Connector, error) {
		b := &batchListener{send: make(chan []core.Reading)}
		batchers.Store(cfg.Name, b)
		return b, nil
	})
}

func (b *batchListener) Close() error { return nil }

func (b *batchListener) Listen(ctx context.Context, emit func(...core.Reading) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case rs := <-b.send:
			if err := emit(rs...); err != nil {
				return err
			}
		}
	}
}

// TestBrokerPortTaken: a managed broker whose port someone else holds (on
// Debian, the mosquitto service) stops the gateway at once with the fix in
// the message, before anything connects to the wrong broker.
func TestBrokerPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{"gateway":{"id":"gw-test","state_dir":%q},"broker":{"listen":%q},"rpc":{"listen":"off"},
		"connectors":[{"name":"sys","type":"system","devices":[{"name":"gateway"}]}]}`, t.TempDir(), l.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = g.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "is taken") || !strings.Contains(err.Error(), "systemctl stop mosquitto") {
		t.Fatalf("Run: %v", err)
	}
}

// TestDriverCommandsOverRPC: a driver's command table is offered as
// TYPE.COMMAND methods, with "connector" choosing among connectors.
func TestDriverCommandsOverRPC(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"cmd-1","type":"test-commander"},{"name":"cmd-2","type":"test-commander"}`))
	var got map[string]any
	tg.call(t, "test-commander.echo", map[string]any{"connector": "cmd-2", "x": 1}, &got)
	if got["connector"] != "cmd-2" || got["params"] != `{"x":1}` {
		t.Fatalf("echo: %v", got)
	}
	var rerr *rpc.Error
	err := tg.rpc.Call(context.Background(), "test-commander.echo", map[string]any{"x": 1}, nil)
	if !errors.As(err, &rerr) || !strings.Contains(rerr.Message, "several test-commander connectors") {
		t.Fatalf("ambiguous call: %v", err)
	}
	tg.call(t, "connector.command", map[string]any{"connector": "cmd-1", "command": "echo", "params": map[string]any{"y": 2}}, &got)
	if got["connector"] != "cmd-1" || got["params"] != `{"y":2}` {
		t.Fatalf("connector.command: %v", got)
	}
}

// TestDriverCommandScope: a driver command that needs the admin scope
// (the Z-Wave key export) is refused to a write key, as its own method
// and through connector.command, and runs for an admin key.
func TestDriverCommandScope(t *testing.T) {
	const writerKey = "writer-key-8e1f0a2b3c4d"
	state := t.TempDir()
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"cmd-1","type":"test-commander"}`),
		`"scope": "admin"}]`, `"scope": "admin"}, {"name": "ops", "sha256": "`+apikey.Hash(writerKey)+`", "scope": "write"}]`, 1)
	doc = strings.Replace(doc, `"state_dir": "STATE"`, `"state_dir": "`+state+`"`, 1)
	tg := startGateway(t, doc)
	writer := rpc.NewClient(tg.rpcURL, writerKey, nil)
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for method, params := range map[string]any{
		"test-commander.secret": nil,
		"connector.command":     map[string]any{"connector": "cmd-1", "command": "secret"},
	} {
		var rerr *rpc.Error
		if err := writer.Call(ctx, method, params, nil); !errors.As(err, &rerr) || rerr.Code != rpc.CodeForbidden || !strings.Contains(rerr.Message, `"admin"`) {
			t.Errorf("%s with a write key: %v, want -32005 naming admin", method, err)
		}
		var got map[string]any
		tg.call(t, method, params, &got)
		if got["secret"] != "s3cr3t" {
			t.Errorf("%s with an admin key: %v", method, got)
		}
	}
	// A command without a scope needs write, as before.
	var got map[string]any
	if err := writer.Call(ctx, "test-commander.echo", map[string]any{"x": 1}, &got); err != nil || got["connector"] != "cmd-1" {
		t.Fatalf("echo with a write key: %v, %v", got, err)
	}
}

type commander struct{ name string }

func init() {
	core.Register("test-commander", func(cfg core.ConnectorConfig) (core.Connector, error) { return &commander{cfg.Name}, nil })
}

func (c *commander) Close() error { return nil }

func (c *commander) Commands() map[string]core.Command {
	return map[string]core.Command{
		"echo": {Help: "returns its params", Run: func(_ context.Context, p json.RawMessage) (any, error) {
			return map[string]any{"connector": c.name, "params": string(p)}, nil
		}},
		"secret": {Help: "returns a secret", Scope: scope.Admin, Run: func(context.Context, json.RawMessage) (any, error) {
			return map[string]any{"secret": "s3cr3t"}, nil
		}},
	}
}
