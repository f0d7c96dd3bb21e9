package export

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/testpeer"
)

// TestPublishRetained: a retained message waits in the spool like any
// other (here across a restart of the sink while the broker is down),
// keeps its order with plain ones, and is retained by the broker: a
// subscriber that comes afterwards gets it. An empty retained payload
// clears it. Plain messages stay plain.
func TestPublishRetained(t *testing.T) {
	port := testpeer.FreePort(t)
	store := t.TempDir()
	url := "tcp://" + testpeer.Addr(port)
	ctx := context.Background()

	// The broker is not there yet: everything waits in the spool.
	s, stop := runSink(t, Options{URL: url, ClientID: "retain-1", StoreDir: store})
	for _, m := range []struct {
		topic, payload string
		retain         bool
	}{
		{"status/gw/devices/a", `{"state":"offline"}`, true},
		{"telemetry/gw/a", "reading", false},
		{"status/gw/devices/a", `{"state":"online"}`, true},
		{"status/gw/devices/b", `{"state":"online"}`, true},
	} {
		var err error
		if m.retain {
			err = s.PublishRetained(ctx, m.topic, []byte(m.payload))
		} else {
			err = s.Publish(ctx, m.topic, []byte(m.payload))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()

	testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Port: port})
	live := testpeer.Subscribe(t, url, testpeer.SubscriberOptions{ClientID: "t-retain-live", Filter: "#"})
	s, _ = runSink(t, Options{URL: url, ClientID: "retain-1", StoreDir: store})
	if miss := live.WaitKeys([]string{"telemetry/gw/a\x00reading", "status/gw/devices/b\x00{\"state\":\"online\"}"}, 30*time.Second); len(miss) > 0 {
		t.Fatalf("spooled messages not sent after the restart: %q", miss)
	}
	var order []string
	for _, m := range live.Messages() {
		order = append(order, m.Topic+" "+string(m.Payload))
	}
	want := []string{`status/gw/devices/a {"state":"offline"}`, `telemetry/gw/a reading`, `status/gw/devices/a {"state":"online"}`, `status/gw/devices/b {"state":"online"}`}
	if len(order) != len(want) {
		t.Fatalf("received %q, want %q", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("received %q, want %q", order, want)
		}
	}

	late := testpeer.Subscribe(t, url, testpeer.SubscriberOptions{ClientID: "t-retain-late", Filter: "#"})
	if miss := late.WaitKeys([]string{"status/gw/devices/a\x00{\"state\":\"online\"}", "status/gw/devices/b\x00{\"state\":\"online\"}"}, 30*time.Second); len(miss) > 0 {
		t.Fatalf("not retained: %q", miss)
	}
	for _, m := range late.Messages() {
		if !m.Retained || m.Topic == "telemetry/gw/a" {
			t.Errorf("late subscriber got %s %s (retained %v)", m.Topic, m.Payload, m.Retained)
		}
	}

	if err := s.PublishRetained(ctx, "status/gw/devices/b", nil); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, 30*time.Second, "the clearing message", func() bool { return s.Queued() == 0 })
	after := testpeer.Subscribe(t, url, testpeer.SubscriberOptions{ClientID: "t-retain-after", Filter: "status/#"})
	if _, ok := after.WaitMessage(2*time.Second, func(m testpeer.Message) bool { return m.Topic == "status/gw/devices/a" }); !ok {
		t.Fatal("status/gw/devices/a no longer retained")
	}
	for _, m := range after.Messages() {
		if m.Topic == "status/gw/devices/b" {
			t.Errorf("cleared retained message still there: %s", m.Payload)
		}
	}
	if err := s.PublishRetained(ctx, "status/+", []byte("x")); err == nil {
		t.Error("a wildcard topic was accepted")
	}
}

// TestWillAndWatch: the broker publishes the sink's will, retained, when
// the connection drops without a clean disconnect (here: the broker
// kills the old connection when a client takes over its id), the sink
// calls OnReconnect when it is back, and Watch gets what is published on
// its topic.
func TestWillAndWatch(t *testing.T) {
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	reconnected := make(chan struct{}, 4)
	watched := make(chan string, 4)
	s, stop := runSink(t, Options{URL: br.URL(), ClientID: "will-1", StoreDir: t.TempDir(), RetryMax: 200 * time.Millisecond,
		Will:        &Will{Topic: "status/gw", Payload: []byte("offline")},
		OnReconnect: func() { reconnected <- struct{}{} },
		Watch:       &Watch{Topic: "status/gw/bridge", Handle: func(p []byte) { watched <- string(p) }},
	})
	sub := testpeer.Subscribe(t, br.URL(), testpeer.SubscriberOptions{ClientID: "t-will", Filter: "status/#"})
	testpeer.WaitFor(t, 30*time.Second, "the sink connected", s.Connected)
	if err := s.PublishRetained(context.Background(), "status/gw/bridge", []byte("1")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-watched:
		if p != "1" {
			t.Fatalf("watched %q", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch got nothing")
	}

	// Another client with the sink's id: Mosquitto drops the sink's
	// connection without a DISCONNECT from it, so its will goes out.
	thief := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("will-1").SetAutoReconnect(false))
	if tok := thief.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect with the sink's id: %v", tok.Error())
	}
	thief.Disconnect(0)
	m, ok := sub.WaitMessage(30*time.Second, func(m testpeer.Message) bool { return m.Topic == "status/gw" })
	if !ok || string(m.Payload) != "offline" {
		t.Fatalf("no will: %v %q", ok, m.Payload)
	}
	select {
	case <-reconnected:
	case <-time.After(30 * time.Second):
		t.Fatal("OnReconnect not called after the sink reconnected")
	}
	stop()
	late := testpeer.Subscribe(t, br.URL(), testpeer.SubscriberOptions{ClientID: "t-will-late", Filter: "status/gw"})
	if m, ok := late.WaitMessage(30*time.Second, func(m testpeer.Message) bool { return m.Topic == "status/gw" }); !ok || !m.Retained || string(m.Payload) != "offline" {
		t.Fatalf("will not retained: %v %+v", ok, m)
	}
}
