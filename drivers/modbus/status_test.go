package modbus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestDeviceStateOverModbus runs the whole gateway against the pymodbus
// peer: on an RTU line (a socat pty) unit 2 answers and unit 3 is absent,
// as a meter that is powered off; a Modbus TCP device's port is closed.
// Both must show offline in devices.list, in gateway.status (degraded,
// naming them), in /metrics and in their retained status messages, and be
// logged as offline, not as answering; then unit 3 is powered on and the
// TCP device starts listening, and both must show online everywhere.
func TestDeviceStateOverModbus(t *testing.T) {
	line := startPeer(t, peerOpts{rtu: true, lateUnit: 3})
	closed := testpeer.Addr(testpeer.FreePort(t)) // nothing listens here yet
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	rpcAddr := testpeer.Addr(testpeer.FreePort(t))
	const key = "modbus-status-key-0123"
	chans := `[{"name":"hr5","register":"holding","address":5},{"name":"ir7","register":"input","address":7}]`
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-mb","state_dir":%q},"broker":{"managed":false,"url":%q},
		"rpc":{"listen":%q,"api_keys":[{"name":"t","sha256":%q}]},
		"connectors":[
		 {"name":"rtu","type":"modbus","settings":{"port":%q,"baud":115200,"timeout":"300ms"},"devices":[
		  {"name":"meter-2","unit_id":2,"interval":"1s","timeout":"1s","channels":%s},
		  {"name":"meter-3","unit_id":3,"interval":"1s","timeout":"1s","channels":%s}]},
		 {"name":"tcp","type":"modbus","settings":{"address":%q,"timeout":"300ms"},"devices":[
		  {"name":"plc","unit_id":2,"interval":"1s","timeout":"1s","channels":%s}]}]}`,
		t.TempDir(), br.URL(), rpcAddr, apikey.Hash(key), line.tty, chans, chans, closed, chans)
	_, logs := apptest.Start(t, doc, rpcAddr)
	client := rpc.NewClient("http://"+rpcAddr, key, nil)
	t.Cleanup(client.Close)

	type device struct {
		Name, Connector, State, Since, Reason string
		LastOK                                string `json:"last_ok"`
		LastError                             string `json:"last_error"`
		Failures                              int
	}
	list := func() map[string]device {
		t.Helper()
		var ds []device
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.Call(c, "devices.list", nil, &ds); err != nil {
			t.Fatalf("devices.list: %v", err)
		}
		m := map[string]device{}
		for _, d := range ds {
			m[d.Name] = d
		}
		return m
	}
	waitStates := func(within time.Duration, want map[string]string) map[string]device {
		t.Helper()
		var got map[string]device
		testpeer.WaitFor(t, within, fmt.Sprintf("devices in %v", want), func() bool {
			got = list()
			for name, state := range want {
				if got[name].State != state {
					return false
				}
			}
			return true
		})
		return got
	}
	status := func() (s struct {
		Health struct {
			Status  string
			Reasons []string
		}
	}) {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.Call(c, "gateway.status", nil, &s); err != nil {
			t.Fatalf("gateway.status: %v", err)
		}
		return s
	}
	metric := func(sample string) string {
		t.Helper()
		resp, err := http.Get("http://" + rpcAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			return "absent"
		}
		return string(m[1])
	}
	statusDoc := func(sub *testpeer.Subscriber, dev string, match func(testpeer.Message, map[string]string) bool) map[string]string {
		t.Helper()
		var doc map[string]string
		if _, ok := sub.WaitMessage(30*time.Second, func(m testpeer.Message) bool {
			var d map[string]string
			if m.Topic != "status/gw-mb/devices/"+dev || json.Unmarshal(m.Payload, &d) != nil || !match(m, d) {
				return false
			}
			doc = d
			return true
		}); !ok {
			t.Fatalf("no matching status message for %s; got %+v", dev, sub.Messages())
		}
		return doc
	}

	devs := waitStates(60*time.Second, map[string]string{"meter-2": "online", "meter-3": "offline", "plc": "offline"})
	m3, plc := devs["meter-3"], devs["plc"]
	if !strings.Contains(m3.Reason, "every channel failed (2)") || !strings.Contains(m3.Reason, "timeout") ||
		m3.LastError == "" || m3.Failures < 1 || m3.LastOK != "" {
		t.Errorf("absent RTU unit: %+v", m3)
	}
	if !strings.Contains(plc.Reason, "connection refused") || plc.Failures < 1 || plc.LastError == "" {
		t.Errorf("closed TCP port: %+v", plc)
	}
	st := status()
	reasons := strings.Join(st.Health.Reasons, "; ")
	if st.Health.Status != "degraded" || !strings.Contains(reasons, "device meter-3 offline") || !strings.Contains(reasons, "device plc offline") {
		t.Errorf("gateway.status health: %+v", st.Health)
	}
	for sample, want := range map[string]string{
		`osgate_device_state{connector="rtu",device="meter-3",state="offline"}`: "1",
		`osgate_device_state{connector="rtu",device="meter-3",state="online"}`:  "0",
		`osgate_device_state{connector="tcp",device="plc",state="offline"}`:     "1",
		`osgate_device_state{connector="rtu",device="meter-2",state="online"}`:  "1",
	} {
		if got := metric(sample); got != want {
			t.Errorf("/metrics %s = %s, want %s", sample, got, want)
		}
	}
	sub := testpeer.Subscribe(t, br.URL(), testpeer.SubscriberOptions{ClientID: "t-mb-status", Filter: "status/gw-mb/#"})
	retained := func(m testpeer.Message, _ map[string]string) bool { return m.Retained }
	for dev, want := range map[string]device{"meter-3": m3, "plc": plc, "meter-2": devs["meter-2"]} {
		if d := statusDoc(sub, dev, retained); d["state"] != want.State || d["reason"] != want.Reason {
			t.Errorf("retained status of %s: %v, devices.list: %+v", dev, d, want)
		}
	}
	if l := logs.String(); !strings.Contains(l, `msg="device offline" gateway=gw-mb connector=rtu type=modbus device=meter-3`) ||
		regexp.MustCompile(`(device answers again|device online again).*device=meter-3`).MatchString(l) {
		t.Errorf("log of the absent unit:\n%s", l)
	}

	// Unit 3 is powered on; the PLC starts listening.
	line.arrive(t)
	startPeer(t, peerOpts{tcp: true, tcpAddr: closed})
	devs = waitStates(120*time.Second, map[string]string{"meter-3": "online", "plc": "online", "meter-2": "online"})
	for _, name := range []string{"meter-3", "plc"} {
		if d := devs[name]; d.Failures != 0 || d.LastError != "" || d.LastOK == "" || d.Reason != "" {
			t.Errorf("%s back: %+v", name, d)
		}
		online := statusDoc(sub, name, func(m testpeer.Message, d map[string]string) bool { return d["state"] == "online" && !m.Retained })
		if online["since"][:19] != devs[name].Since[:19] {
			t.Errorf("%s: status since %s, devices.list since %s", name, online["since"], devs[name].Since)
		}
	}
	if st := status(); st.Health.Status != "ok" || len(st.Health.Reasons) != 0 {
		t.Errorf("gateway.status after recovery: %+v", st.Health)
	}
	for sample, want := range map[string]string{
		`osgate_device_state{connector="rtu",device="meter-3",state="online"}`:  "1",
		`osgate_device_state{connector="rtu",device="meter-3",state="offline"}`: "0",
		`osgate_device_state{connector="tcp",device="plc",state="online"}`:      "1",
		`osgate_device_failures{connector="tcp",device="plc"}`:                  "0",
	} {
		if got := metric(sample); got != want {
			t.Errorf("/metrics %s = %s, want %s", sample, got, want)
		}
	}
	if !strings.Contains(logs.String(), `msg="device online again" gateway=gw-mb connector=rtu type=modbus device=meter-3`) {
		t.Errorf("the unit's return is not logged:\n%s", logs.String())
	}
}
