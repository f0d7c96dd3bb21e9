package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/testpeer"
)

// The mappings every broker test uses.
const testMappings = `[
	{"topic": "site/{site}/meter/{device}/state", "device": "{site}-{device}",
	 "time": {"path": "ts", "format": "rfc3339"},
	 "channels": [
		{"name": "voltage_l1", "path": "voltage[0]", "unit": "V"},
		{"name": "voltage_l2", "path": "voltage[1]", "unit": "V"},
		{"name": "energy", "path": "energy.total", "unit": "kWh"}]},
	{"topic": "sensors/{device}/{channel}", "payload": "text", "channels": [{"name": "{channel}"}]},
	{"topic": "gw/+/data", "device": "{json:id}", "time": {"path": "t", "format": "unix_ms"},
	 "channels": [{"each": "values"}]}
]`

// TestTwoFieldBrokers subscribes one connector to a plain broker and to a
// TLS broker with a password, publishes to several topics on both, and
// checks every reading, the renaming by configured devices, and that
// malformed and unmatched messages are counted without stopping anything.
func TestTwoFieldBrokers(t *testing.T) {
	plain := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	secure := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true, Users: map[string]string{"osgate": "s3cret", "field": "f1eld"}})

	// A stale subscription left in the connector's session by an older
	// config: its messages match no mapping.
	stale := paho.NewClient(paho.NewClientOptions().AddBroker(plain.URL()).SetClientID("osgate-field-plain").SetCleanSession(false))
	if tok := stale.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("stale session: %v", tok.Error())
	}
	if tok := stale.Subscribe("stale/#", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("stale subscribe: %v", tok.Error())
	}
	stale.Disconnect(100)

	settings := fmt.Sprintf(`{
		"brokers": [
			{"name": "plain", "url": %q, "tls": false},
			{"name": "secure", "url": %q, "ca_file": %q, "username": "osgate", "password": "s3cret", "qos": 1}
		],
		"mappings": %s
	}`, plain.URL(), secure.URL(), secure.CAFile(), testMappings)
	devices := []*core.Device{{
		Name:     "meter-north-7",
		Settings: []byte(`{"source": "north-m7"}`),
		Channels: []*core.Channel{
			{Name: "u1", Unit: "V", Settings: []byte(`{"source": "voltage_l1"}`)},
			{Name: "energy", Unit: "Wh", Settings: []byte(`{}`)},
		},
	}}
	c := newConnector(t, "field", settings, devices)
	col := newCollector()
	listen(t, c, col)

	// Wait until both sessions are subscribed: a probe on each broker.
	pubPlain := newPublisher(t, plain.URL(), pubOpts{})
	pubSecure := newPublisher(t, secure.URL(), pubOpts{user: "field", pass: "f1eld", ca: secure.CAFile()})
	waitSubscribed(t, col, pubPlain, "plain")
	waitSubscribed(t, col, pubSecure, "secure")

	payloadBefore := mapping.Rejected("field", mapping.ReasonPayload)
	unmatchedBefore := mapping.Rejected("field", mapping.ReasonUnmatched)

	pubPlain.publish("site/north/meter/m7/state", `{"ts":"2026-11-24T13:41:00.123Z","voltage":[230.1,229.9],"energy":{"total":1234.5}}`)
	pubPlain.publish("stale/x", `1`)
	pubPlain.publish("sensors/t1/temperature", "21.5")
	pubPlain.publish("site/south/meter/m1/state", `{"voltage":[`) // malformed
	pubSecure.publish("sensors/door/state", "open")
	pubSecure.publish("gw/abc/data", `{"id":"hall","t":1764072000500,"values":{"co2":612,"occupied":true}}`)
	pubSecure.publish("site/south/meter/m2/state", `{"voltage":[231],"energy":{"total":7}}`)

	want := []string{
		"meter-north-7/u1=230.1 V",
		"meter-north-7/voltage_l2=229.9 V",
		"meter-north-7/energy=1234.5 Wh",
		"t1/temperature=21.5",
		"door/state=open",
		"hall/co2=612",
		"hall/occupied=true",
		"south-m2/voltage_l1=231 V",
		"south-m2/energy=7 kWh",
	}
	col.waitFor(t, 60*time.Second, "every reading", func(rs []core.Reading) bool {
		return len(missing(rs, want)) == 0
	})
	for _, r := range col.readings() {
		switch {
		case r.Device == "meter-north-7":
			if !r.Time.Equal(time.Date(2026, 11, 24, 13, 41, 0, 123e6, time.UTC)) {
				t.Errorf("%s: time %v, want the payload's ts", key(r), r.Time)
			}
		case r.Device == "hall":
			if !r.Time.Equal(time.UnixMilli(1764072000500)) {
				t.Errorf("%s: time %v, want the payload's t", key(r), r.Time)
			}
		case r.Device == "probe":
		default:
			if time.Since(r.Time) > 5*time.Minute || r.Time.After(time.Now()) {
				t.Errorf("%s: time %v, want the time of arrival", key(r), r.Time)
			}
		}
		if strings.HasPrefix(r.Device, "south-m1") {
			t.Errorf("a malformed message gave a reading: %s", key(r))
		}
	}
	waitCount(t, "payload rejects", func() float64 { return mapping.Rejected("field", mapping.ReasonPayload) - payloadBefore }, 1)
	waitCount(t, "unmatched rejects", func() float64 { return mapping.Rejected("field", mapping.ReasonUnmatched) - unmatchedBefore }, 1)
}

// waitSubscribed publishes probes until one comes through the connector.
func waitSubscribed(t *testing.T, col *collector, p *publisher, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p.publish("sensors/probe/"+name, "1")
		probe := time.NewTimer(time.Second)
		got := false
		for !got {
			col.mu.Lock()
			ch := col.change
			for _, r := range col.rs {
				got = got || (r.Device == "probe" && r.Channel == name)
			}
			col.mu.Unlock()
			if got {
				break
			}
			select {
			case <-ch:
				continue
			case <-probe.C:
			}
			break
		}
		probe.Stop()
		if got {
			return
		}
	}
	t.Fatalf("broker %s: no probe came through within 60s", name)
}

func missing(rs []core.Reading, want []string) []string {
	have := map[string]bool{}
	for _, r := range rs {
		have[key(r)] = true
	}
	var miss []string
	for _, w := range want {
		if !have[w] {
			miss = append(miss, w)
		}
	}
	return miss
}

func waitCount(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v, want %v", what, get(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnacknowledgedUntilEmitted checks that a message whose reading emit
// did not accept is not acknowledged: the broker sends it again to the
// next Listen. Two ways: osgate stops while emit is blocked (back-pressure),
// and emit refuses the reading (Listen then returns the error). With
// paho's automatic acknowledgement the message would be lost.
func TestUnacknowledgedUntilEmitted(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		for round := range 3 {
			t.Run(fmt.Sprintf("refuse=%v/%d", refuse, round), func(t *testing.T) {
				unacknowledgedRound(t, refuse)
			})
		}
	}
}

func unacknowledgedRound(t *testing.T, refuse bool) {
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	settings := fmt.Sprintf(`{"brokers":[{"url":%q,"tls":false}],"mappings":%s}`, broker.URL(), testMappings)
	c := newConnector(t, "ack", settings, nil)
	pub := newPublisher(t, broker.URL(), pubOpts{})

	first := newCollector()
	first.gate = make(chan struct{}) // never opened: the pipeline is full
	if refuse {
		first.refuse = errors.New("pipeline refused the reading")
	}
	l := listen(t, c, first)
	// Publish distinct values until the connector holds one in emit (the
	// subscription may not be there for the first ones).
	var held core.Reading
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		pub.publish("sensors/m/v", fmt.Sprint(100+i))
		first.mu.Lock()
		if len(first.held) > 0 {
			held = first.held[0]
		}
		first.mu.Unlock()
		if held.Device != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connector never received a message")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pub.publish("sensors/m/v", "42") // queued behind the held one
	if refuse {
		select {
		case err := <-l.done:
			if err == nil || !strings.Contains(err.Error(), "pipeline refused the reading") {
				t.Fatalf("Listen = %v, want the emit error", err)
			}
			l.cancel()
			l.cancel = nil
		case <-time.After(30 * time.Second):
			t.Fatal("Listen did not return after emit refused a reading")
		}
	} else {
		l.stop(t)
	}
	if n := len(first.readings()); n != 0 {
		t.Fatalf("the first Listen accepted %d readings", n)
	}

	second := newCollector()
	listen(t, c, second)
	second.waitFor(t, 60*time.Second, "the held message "+key(held)+" again, and the next", func(rs []core.Reading) bool {
		return len(missing(rs, []string{key(held), "m/v=42"})) == 0
	})
}

// TestConfigErrors checks that every problem is reported with its path.
func TestConfigErrors(t *testing.T) {
	_, err := New(core.ConnectorConfig{Name: "bad", Settings: []byte(`{
		"brokers": [
			{"url": "tcp://h", "ca_file": "/x.pem", "qos": 3},
			{"url": "ftp://h:1", "cert_file": "c.pem"},
			{"name": "0", "url": "ssl://user:pw@h:8883", "insecure": true, "ca_file": "ca.pem", "keep_alive": "10ms", "password": "p"}
		],
		"mappings": [
			{"topic": "a/#/b", "channels": [{"name": "x"}]},
			{"topic": "s/{device}", "channels": [{"path": "a"}], "bogus": 1},
			{"topic": "t/{device}", "payload": "text", "channels": [{"name": "x", "path": "y"}]}
		],
		"only_configurd": true
	}`), Devices: []*core.Device{{Name: "d", Settings: []byte(`{"url": "x"}`)}}})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, frag := range []string{
		`settings.brokers[0].url: "tcp://h" needs a host and a port`,
		"settings.brokers[0].qos: must be 0, 1 or 2, not 3",
		"settings.brokers[1].url: scheme \"ftp\"",
		"settings.brokers[1].key_file: is required with cert_file",
		`settings.brokers[2].name: "0" is already the name of broker 0`,
		"settings.brokers[2].url: must not carry credentials",
		"settings.brokers[2].keep_alive: must be at least 1s",
		"settings.brokers[2].password: needs a username",
		"settings.mappings[0].topic: \"a/#/b\": \"#\" may only be the last level",
		"settings.mappings[1].bogus: unknown field",
		"settings.mappings[1].channels[0].name: is required",
		"settings.mappings[2].channels[0].path: must be empty: a text payload is one value",
		"settings.only_configurd: unknown field (did you mean \"only_configured\"?)",
		"devices[0].url: unknown field",
	} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error lacks %q:\n%v", frag, err)
		}
	}
	_, err = New(core.ConnectorConfig{Name: "bad", Settings: []byte(`{"brokers":[{"url":"tcp://h:1", "server_name": "x"}],"mappings":[]}`)})
	for _, frag := range []string{"settings.brokers[0].server_name: needs a TLS URL", "settings.mappings: must list at least one mapping"} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("error lacks %q: %v", frag, err)
		}
	}
	_, err = New(core.ConnectorConfig{Name: "bad"})
	if err == nil || !strings.Contains(err.Error(), "settings.brokers: is required") {
		t.Errorf("empty settings: %v", err)
	}
}

// TestClearTextNeedsSaying: a plain broker URL is refused unless the
// config says "tls": false; a TLS URL with "tls": false, or a plain one
// with true, is a contradiction.
func TestClearTextNeedsSaying(t *testing.T) {
	_, err := New(core.ConnectorConfig{Name: "clear", Settings: []byte(`{
		"brokers": [
			{"url": "tcp://plant:1883", "username": "gw", "password": "pw"},
			{"url": "ws://plant:9001/mqtt", "tls": true},
			{"url": "ssl://plant:8883", "tls": false},
			{"url": "mqtt://plant:1883", "tls": false},
			{"url": "mqtts://plant:8883"}
		],
		"mappings": [{"topic": "a/{device}", "channels": [{"name": "v"}]}]}`)})
	want := `settings.brokers[0].url: tcp:// is not encrypted: the broker's password and the readings cross the network in clear text; use ssl://, mqtts:// or wss://, or set "tls": false to do that on purpose
settings.brokers[1].tls: is true but ws:// is not encrypted: use ssl://, mqtts:// or wss://
settings.brokers[2].tls: is false but ssl:// is TLS: use tcp:// for a plain connection`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// TestBadTLSFilesFailListen checks that unreadable TLS files make Listen
// return a clear error (the core restarts it) rather than hang.
func TestBadTLSFilesFailListen(t *testing.T) {
	c := newConnector(t, "tlsfail", `{"brokers":[{"url":"ssl://127.0.0.1:1","ca_file":"/nonexistent/ca.pem"}],"mappings":[{"topic":"a/{device}","channels":[{"name":"v"}]}]}`, nil)
	err := c.Listen(t.Context(), func(...core.Reading) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "read ca_file") || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Fatalf("Listen = %v, want a ca_file error", err)
	}
}

// TestFieldBrokerRestartLosesNothing publishes numbered QoS 1 messages
// while the field broker is stopped and started again several times, with
// a pipeline that is slow now and then, and checks that every number
// arrives. Duplicates are allowed (QoS 1), gaps are not.
func TestFieldBrokerRestartLosesNothing(t *testing.T) {
	const (
		restarts = 4
		perPhase = 150
	)
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	settings := fmt.Sprintf(`{"brokers":[{"url":%q,"tls":false,"max_reconnect_interval":"500ms"}],"mappings":%s}`, broker.URL(), testMappings)
	c := newConnector(t, "restart", settings, nil)
	col := newCollector()
	slow := make(chan struct{})
	col.gate = slow
	// The pipeline: lets readings through, pausing every 50th until the
	// test has published more behind it.
	stopGate := make(chan struct{})
	gateDone := make(chan struct{})
	go func() {
		defer close(gateDone)
		for i := 0; ; i++ {
			if i%50 == 49 {
				select {
				case <-time.After(20 * time.Millisecond):
				case <-stopGate:
					return
				}
			}
			select {
			case slow <- struct{}{}:
			case <-stopGate:
				return
			}
		}
	}()
	defer func() { close(stopGate); <-gateDone }()
	listen(t, c, col)
	pub := newPublisher(t, broker.URL(), pubOpts{id: "restart-pub"})
	waitSubscribed(t, col, pub, "restart")

	var want []string
	n := 0
	for phase := 0; phase <= restarts; phase++ {
		for range perPhase {
			n++
			pub.publish("sensors/seq/n", fmt.Sprint(n))
			want = append(want, fmt.Sprintf("seq/n=%d", n))
		}
		if phase < restarts {
			// Stop while messages are still queued for the connector.
			broker.Stop()
			broker.Start()
		}
	}
	col.waitFor(t, 120*time.Second, fmt.Sprintf("all %d numbered messages", n), func(rs []core.Reading) bool {
		return len(missing(rs, want)) == 0
	})
	dups := len(col.readings()) - n
	t.Logf("%d messages across %d broker restarts: none lost, %d readings repeated (QoS 1 redelivery) or probes", n, restarts, dups)
}

// TestLongBackPressureLosesNothing holds the pipeline full for several
// keep-alive periods (the client cannot read the broker's ping answers
// meanwhile and reconnects) and checks that every message arrives once the
// pipeline drains.
func TestLongBackPressureLosesNothing(t *testing.T) {
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	settings := fmt.Sprintf(`{"brokers":[{"url":%q,"tls":false,"keep_alive":"1s","max_reconnect_interval":"500ms"}],"mappings":%s}`, broker.URL(), testMappings)
	c := newConnector(t, "hold", settings, nil)
	col := newCollector()
	gate := make(chan struct{})
	col.gate = gate
	listen(t, c, col)
	pub := newPublisher(t, broker.URL(), pubOpts{id: "hold-pub"})

	// Let probes through until the subscription is there.
	open := make(chan struct{})
	go func() {
		for {
			select {
			case gate <- struct{}{}:
			case <-open:
				return
			}
		}
	}()
	waitSubscribed(t, col, pub, "hold")
	close(open)

	const n = 200
	var want []string
	for i := range n {
		pub.publish("sensors/held/n", fmt.Sprint(i))
		want = append(want, fmt.Sprintf("held/n=%d", i))
	}
	col.waitHeldAtLeast(t, 1)
	// Hold for five keep-alive periods: the scenario, not a speed
	// assumption.
	time.Sleep(5 * time.Second)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case gate <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	defer close(stop)
	col.waitFor(t, 120*time.Second, fmt.Sprintf("all %d held messages", n), func(rs []core.Reading) bool {
		return len(missing(rs, want)) == 0
	})
}

// TestRestartOfOneBrokerSparesTheOther restarts one of two field brokers
// while both publish: nothing of either is lost.
func TestRestartOfOneBrokerSparesTheOther(t *testing.T) {
	a := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	b := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true, Users: map[string]string{"osgate": "pw"}})
	settings := fmt.Sprintf(`{"brokers":[
		{"name":"a","url":%q,"tls":false,"max_reconnect_interval":"500ms"},
		{"name":"b","url":%q,"ca_file":%q,"username":"osgate","password":"pw"}],"mappings":%s}`,
		a.URL(), b.URL(), b.CAFile(), testMappings)
	c := newConnector(t, "two", settings, nil)
	col := newCollector()
	listen(t, c, col)
	pa := newPublisher(t, a.URL(), pubOpts{id: "two-a"})
	pb := newPublisher(t, b.URL(), pubOpts{id: "two-b", user: "osgate", pass: "pw", ca: b.CAFile()})
	waitSubscribed(t, col, pa, "a")
	waitSubscribed(t, col, pb, "b")
	var want []string
	for round := range 3 {
		for i := range 100 {
			n := round*100 + i
			pa.publish("sensors/a/n", fmt.Sprint(n))
			pb.publish("sensors/b/n", fmt.Sprint(n))
			want = append(want, fmt.Sprintf("a/n=%d", n), fmt.Sprintf("b/n=%d", n))
		}
		a.Stop()
		// b keeps delivering while a is down.
		pb.publish("sensors/b/during", fmt.Sprint(round))
		col.waitFor(t, 60*time.Second, "b's message while a is down", func(rs []core.Reading) bool {
			return len(missing(rs, []string{fmt.Sprintf("b/during=%d", round)})) == 0
		})
		a.Start()
	}
	col.waitFor(t, 120*time.Second, "every message of both brokers", func(rs []core.Reading) bool {
		return len(missing(rs, want)) == 0
	})
}
