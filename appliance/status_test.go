package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// Two more test connectors stand in for field devices (the broker, the
// RPC service and the subscribers are real): "test-switch", whose devices
// answer as the test sets (every channel good, one bad, every one bad as
// an absent RS-485 slave does, or unreachable), and "test-reporter", a
// listener whose devices report when the test says so.

func init() {
	core.Register("test-switch", func(core.ConnectorConfig) (core.Connector, error) { return switchConn{}, nil })
	core.Register("test-reporter", func(core.ConnectorConfig) (core.Connector, error) { return reporterConn{}, nil })
}

// switchModes: device name → "ok" (default), "some", "none" or "error".
var switchModes sync.Map

type switchConn struct{}

func (switchConn) Close() error { return nil }

func (switchConn) Poll(_ context.Context, dev *core.Device) ([]core.Reading, error) {
	now := time.Now()
	a := core.Reading{Device: dev.Name, Channel: "a", Value: 1.0, Time: now}
	b := core.Reading{Device: dev.Name, Channel: "b", Value: 2.0, Time: now}
	noAnswer := errors.New("modbus: timeout: no answer from unit 3")
	mode, _ := switchModes.Load(dev.Name)
	switch mode {
	case "some":
		return []core.Reading{a, core.BadReading(dev.Name, "b", now, errors.New("exception 2: illegal data address"))}, nil
	case "none":
		return []core.Reading{core.BadReading(dev.Name, "a", now, noAnswer), core.BadReading(dev.Name, "b", now, noAnswer)}, nil
	case "error":
		return nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	}
	return []core.Reading{a, b}, nil
}

// reports carries the names of devices that report now.
var reports = make(chan string)

type reporterConn struct{}

func (reporterConn) Close() error { return nil }

func (reporterConn) Listen(ctx context.Context, emit func(...core.Reading) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case dev := <-reports:
			if err := emit(core.Reading{Device: dev, Channel: "t", Value: 21.5, Time: time.Now()}); err != nil {
				return err
			}
		}
	}
}

// deviceView is a devices.list entry as the tests read it.
type deviceView struct {
	Name      string `json:"name"`
	Connector string `json:"connector"`
	State     string `json:"state"`
	Since     string `json:"since"`
	Reason    string `json:"reason"`
	LastOK    string `json:"last_ok"`
	LastError string `json:"last_error"`
	Failures  int    `json:"failures"`
}

func (tg *testGateway) devices(t *testing.T) map[string]deviceView {
	t.Helper()
	var list []deviceView
	tg.call(t, "devices.list", nil, &list)
	m := map[string]deviceView{}
	for _, d := range list {
		m[d.Name] = d
	}
	return m
}

// healthView is gateway.status's health as the tests read it.
type healthView struct {
	Status  string         `json:"status"`
	Reasons []string       `json:"reasons"`
	Devices map[string]int `json:"devices"`
}

func (tg *testGateway) health(t *testing.T) healthView {
	t.Helper()
	var st struct {
		Health healthView `json:"health"`
	}
	tg.call(t, "gateway.status", nil, &st)
	return st.Health
}

// waitStates waits until devices.list shows every device in the state
// want gives it, and returns the list.
func (tg *testGateway) waitStates(t *testing.T, within time.Duration, want map[string]string) map[string]deviceView {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := tg.devices(t)
		ok := true
		for name, state := range want {
			ok = ok && got[name].State == state
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("devices not in states %v after %s: %+v", want, within, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one sample of /metrics, e.g.
// `osgate_device_state{connector="s1",device="d",state="offline"}`.
func metric(t *testing.T, baseURL, sample string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("metric %s: %v", sample, err)
	}
	return v, true
}

// mustMetric is metric for a sample that must be served.
// appUser and appPass log in as broker.username, which may read the
// status topics that clients without a username may not.
const appUser, appPass = "app", "app-secret-1"

// withAppUser adds broker.username appUser to a startGateway document.
func withAppUser(doc string) string {
	return strings.Replace(doc, `"broker": {"listen": "BROKER"}`,
		`"broker": {"listen": "BROKER", "username": "`+appUser+`", "password": "`+appPass+`"}`, 1)
}

func mustMetric(t *testing.T, baseURL, sample string) float64 {
	t.Helper()
	v, ok := metric(t, baseURL, sample)
	if !ok {
		t.Fatalf("metric %s not served", sample)
	}
	return v
}

func wantMetric(t *testing.T, baseURL, sample string, want float64) {
	t.Helper()
	if v, ok := metric(t, baseURL, sample); !ok || v != want {
		t.Errorf("/metrics %s = %v (present %v), want %v", sample, v, ok, want)
	}
}

// statusDoc is a status message's payload (gateway or device).
type statusDoc struct {
	State   string         `json:"state"`
	Since   string         `json:"since"`
	Reason  string         `json:"reason"`
	Version string         `json:"version"`
	Boot    string         `json:"boot"`
	Devices map[string]int `json:"devices"`
}

// waitStatus waits for a message on topic whose document match accepts.
func waitStatus(t *testing.T, sub *testpeer.Subscriber, within time.Duration, topic string, match func(testpeer.Message, statusDoc) bool) (testpeer.Message, statusDoc) {
	t.Helper()
	var doc statusDoc
	m, ok := sub.WaitMessage(within, func(m testpeer.Message) bool {
		if m.Topic != topic {
			return false
		}
		var d statusDoc
		if json.Unmarshal(m.Payload, &d) != nil {
			return false
		}
		if match(m, d) {
			doc = d
			return true
		}
		return false
	})
	if !ok {
		var seen []string
		for _, m := range sub.Messages() {
			seen = append(seen, m.Topic+" "+string(m.Payload))
		}
		t.Fatalf("no matching status on %s within %s; received:\n%s", topic, within, strings.Join(seen, "\n"))
	}
	return m, doc
}

// TestDeviceStatesEverywhere: devices that answer fully, partly, not at
// all (every channel bad, as an absent RS-485 slave) and not even at the
// transport show the same state, since and reason in devices.list,
// gateway.status (degraded, naming the offline ones), /metrics and their
// retained status messages; the devices of a disabled connector show as
// disabled; and the offline ones come back online everywhere when they
// answer again.
func TestDeviceStatesEverywhere(t *testing.T) {
	for dev, mode := range map[string]string{"d-ok": "ok", "d-some": "some", "d-none": "none", "d-down": "error"} {
		switchModes.Store(dev, mode)
	}
	tg := startGateway(t, withAppUser(fmt.Sprintf(envelope, `{"name":"s1","type":"test-switch","devices":[
		{"name":"d-ok","interval":"100ms"},{"name":"d-some","interval":"100ms"},
		{"name":"d-none","interval":"100ms"},{"name":"d-down","interval":"100ms"}]},
		{"name":"s2","type":"test-switch","enabled":false,"devices":[{"name":"d-off"}]}`)))

	devs := tg.waitStates(t, 30*time.Second, map[string]string{
		"d-ok": "online", "d-some": "degraded", "d-none": "offline", "d-down": "offline", "d-off": "disabled"})
	none, down := devs["d-none"], devs["d-down"]
	if !strings.Contains(none.Reason, "every channel failed (2); a: modbus: timeout") || none.LastError != none.Reason ||
		none.Failures < 1 || none.LastOK != "" || none.Since == "" {
		t.Errorf("d-none (no channel answers): %+v", none)
	}
	if !strings.Contains(down.Reason, "connection refused") || down.Failures < 1 || down.LastError == "" {
		t.Errorf("d-down (unreachable): %+v", down)
	}
	if d := devs["d-some"]; !strings.Contains(d.Reason, "1 of 2 channels failed; b: exception 2") || d.Failures != 0 || d.LastOK == "" {
		t.Errorf("d-some (one channel bad): %+v", d)
	}
	if d := devs["d-off"]; d.Connector != "s2" || !strings.Contains(d.Reason, "connector s2 is disabled") {
		t.Errorf("d-off (disabled connector): %+v", d)
	}

	h := tg.health(t)
	reasons := strings.Join(h.Reasons, "; ")
	if h.Status != "degraded" || !strings.Contains(reasons, "device d-none offline since "+none.Since[:19]) ||
		!strings.Contains(reasons, "device d-down offline") || strings.Contains(reasons, "d-some") || strings.Contains(reasons, "d-ok") {
		t.Errorf("gateway.status health: %+v", h)
	}
	if h.Devices["offline"] != 2 || h.Devices["online"] != 1 || h.Devices["degraded"] != 1 || h.Devices["disabled"] != 1 {
		t.Errorf("gateway.status device counts: %v", h.Devices)
	}

	for dev, state := range map[string]string{"d-none": "offline", "d-down": "offline", "d-ok": "online", "d-some": "degraded"} {
		wantMetric(t, tg.rpcURL, fmt.Sprintf(`osgate_device_state{connector="s1",device="%s",state="%s"}`, dev, state), 1)
		wantMetric(t, tg.rpcURL, fmt.Sprintf(`osgate_device_state{connector="s1",device="%s",state="unknown"}`, dev), 0)
	}
	wantMetric(t, tg.rpcURL, `osgate_device_state{connector="s2",device="d-off",state="disabled"}`, 1)
	if v, ok := metric(t, tg.rpcURL, `osgate_device_failures{connector="s1",device="d-none"}`); !ok || v < 1 {
		t.Errorf("osgate_device_failures of d-none: %v %v", v, ok)
	}

	// A subscriber that comes later finds every state retained.
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-states", Filter: "status/gw-test/#", Username: appUser, Password: appPass})
	retained := func(m testpeer.Message, _ statusDoc) bool { return m.Retained }
	for dev, want := range map[string]deviceView{"d-none": none, "d-down": down, "d-ok": devs["d-ok"], "d-some": devs["d-some"], "d-off": devs["d-off"]} {
		_, doc := waitStatus(t, sub, 30*time.Second, "status/gw-test/devices/"+dev, retained)
		if doc.State != want.State || doc.Reason != want.Reason || doc.Since[:19] != want.Since[:19] {
			t.Errorf("retained status of %s: %+v, devices.list says %+v", dev, doc, want)
		}
	}
	_, gw := waitStatus(t, sub, 30*time.Second, "status/gw-test", retained)
	if gw.State != "online" || gw.Boot != bootID || gw.Version != Version || gw.Since == "" {
		t.Errorf("retained gateway status: %+v", gw)
	}

	switchModes.Store("d-none", "ok")
	switchModes.Store("d-down", "ok")
	devs = tg.waitStates(t, 90*time.Second, map[string]string{"d-none": "online", "d-down": "online"})
	if d := devs["d-none"]; d.Failures != 0 || d.LastError != "" || d.Reason != "" || d.LastOK == "" {
		t.Errorf("d-none back: %+v", d)
	}
	if h := tg.health(t); h.Status != "ok" || len(h.Reasons) != 0 {
		t.Errorf("gateway.status after recovery: %+v", h)
	}
	wantMetric(t, tg.rpcURL, `osgate_device_state{connector="s1",device="d-none",state="online"}`, 1)
	wantMetric(t, tg.rpcURL, `osgate_device_state{connector="s1",device="d-none",state="offline"}`, 0)
	for _, dev := range []string{"d-none", "d-down"} {
		waitStatus(t, sub, 30*time.Second, "status/gw-test/devices/"+dev, func(m testpeer.Message, d statusDoc) bool {
			return !m.Retained && d.State == "online" && d.Since[:19] == devs[dev].Since[:19]
		})
	}

	// A clean stop says so, retained.
	tg.stop(t)
	_, gw = waitStatus(t, sub, 5*time.Second, "status/gw-test", func(m testpeer.Message, d statusDoc) bool { return d.State == "offline" })
	if gw.Reason != "stopped" || gw.Boot != bootID {
		t.Errorf("gateway status at stop: %+v", gw)
	}
}

// TestListenerDeviceSilence: a device that reports on its own is offline
// while it has not reported for its interval, and online when it reports.
func TestListenerDeviceSilence(t *testing.T) {
	tg := startGateway(t, fmt.Sprintf(envelope, `{"name":"r1","type":"test-reporter","devices":[{"name":"q-1","interval":"700ms"}]}`))
	d := tg.waitStates(t, 30*time.Second, map[string]string{"q-1": "offline"})["q-1"]
	if !strings.Contains(d.Reason, "no report since the connector started (interval 700ms)") {
		t.Errorf("never reported: %+v", d)
	}
	if h := tg.health(t); h.Status != "degraded" || !strings.Contains(strings.Join(h.Reasons, ";"), "device q-1 offline") {
		t.Errorf("health with a silent device: %+v", h)
	}
	reports <- "q-1"
	d = tg.waitStates(t, 10*time.Second, map[string]string{"q-1": "online"})["q-1"]
	if d.LastOK == "" {
		t.Errorf("reported: %+v", d)
	}
	d = tg.waitStates(t, 10*time.Second, map[string]string{"q-1": "offline"})["q-1"]
	if !strings.Contains(d.Reason, "no report since "+d.LastOK[:19]) {
		t.Errorf("silent again: %+v", d)
	}
}

// TestStatusFollowsConfigChanges: a connector-only change applied in place
// clears the retained status of a device that left the configuration and
// forgets it everywhere, shows a newly disabled connector's devices as
// disabled, and keeps the state of a device whose connector restarted.
func TestStatusFollowsConfigChanges(t *testing.T) {
	switchModes.Store("x-1", "none")
	tg := startGateway(t, withAppUser(fmt.Sprintf(envelope, `{"name":"sa","type":"test-switch","devices":[{"name":"x-1","interval":"100ms"},{"name":"x-2","interval":"100ms"}]},
		{"name":"sb","type":"test-switch","devices":[{"name":"x-3","interval":"100ms"}]}`)))
	before := tg.waitStates(t, 30*time.Second, map[string]string{"x-1": "offline", "x-2": "online", "x-3": "online"})
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-cfg", Filter: "status/gw-test/devices/#", Username: appUser, Password: appPass})
	waitStatus(t, sub, 30*time.Second, "status/gw-test/devices/x-2", func(m testpeer.Message, d statusDoc) bool { return d.State == "online" })

	tg.g.mu.Lock()
	cfg := *tg.g.cfg
	tg.g.mu.Unlock()
	sa, sb := cfg.Connectors[0], cfg.Connectors[1]
	sa.Devices = sa.Devices[:1] // x-2 leaves; sa restarts
	sb.Enabled = new(false)     // x-3 is disabled
	cfg.Connectors = []config.Connector{sa, sb}
	if err := tg.g.ApplyConnectors(&cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := sub.WaitMessage(30*time.Second, func(m testpeer.Message) bool {
		return m.Topic == "status/gw-test/devices/x-2" && len(m.Payload) == 0
	}); !ok {
		t.Fatal("the retained status of the removed device was not cleared")
	}
	waitStatus(t, sub, 30*time.Second, "status/gw-test/devices/x-3", func(m testpeer.Message, d statusDoc) bool {
		return d.State == "disabled" && strings.Contains(d.Reason, "connector sb is disabled")
	})
	devs := tg.waitStates(t, 30*time.Second, map[string]string{"x-1": "offline", "x-3": "disabled"})
	if _, ok := devs["x-2"]; ok {
		t.Errorf("removed device still listed: %+v", devs["x-2"])
	}
	if devs["x-1"].Since != before["x-1"].Since || devs["x-1"].Reason != before["x-1"].Reason {
		t.Errorf("restarted connector's device lost its state: %+v, was %+v", devs["x-1"], before["x-1"])
	}
	if _, ok := metric(t, tg.rpcURL, `osgate_device_state{connector="sa",device="x-2",state="online"}`); ok {
		t.Error("removed device still in /metrics")
	}
	wantMetric(t, tg.rpcURL, `osgate_device_state{connector="sb",device="x-3",state="disabled"}`, 1)
	wantMetric(t, tg.rpcURL, `osgate_device_state{connector="sb",device="x-3",state="online"}`, 0)
	if h := tg.health(t); h.Devices["disabled"] != 1 || h.Devices["offline"] != 1 || len(h.Devices) != 2 {
		t.Errorf("health device counts: %v", h.Devices)
	}
	// A late subscriber finds no retained status for x-2.
	late := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-cfg-late", Filter: "status/gw-test/devices/#", Username: appUser, Password: appPass})
	late.WaitMessage(2*time.Second, func(testpeer.Message) bool { return false })
	for _, m := range late.Messages() {
		if m.Topic == "status/gw-test/devices/x-2" {
			t.Errorf("removed device's status still retained: %s", m.Payload)
		}
	}
}
