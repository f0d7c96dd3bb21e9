package fleet

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/testpeer"
)

// message is one message as the broker delivers it to Watch.receive
// (paho's mqtt.Message: the fields the watch reads), retained unless live.
type message struct {
	topic   string
	payload []byte
	live    bool
}

func (m message) Duplicate() bool   { return false }
func (m message) Qos() byte         { return 0 }
func (m message) Retained() bool    { return !m.live }
func (m message) Topic() string     { return m.topic }
func (m message) MessageID() uint16 { return 0 }
func (m message) Payload() []byte   { return m.payload }
func (m message) Ack()              {}

func newWatch() *Watch { return &Watch{gws: map[string]*Gateway{}, changed: make(chan struct{})} }

// TestWatch: documents and bridge states make the view; a cleared
// document removes the gateway; malformed and oversized messages are
// counted and change nothing.
func TestWatch(t *testing.T) {
	w := newWatch()
	changed := w.Changed()
	w.receive(nil, message{topic: "status/gw-1", payload: []byte(`{"id":"gw-1","state":"online","version":"v1","at":"2026-12-06T12:00:00.000Z","labels":{"site":"berlin"}}`)})
	select {
	case <-changed:
	default:
		t.Error("Changed not closed by a document")
	}
	w.receive(nil, message{topic: "status/gw-1/bridge", payload: []byte("1")})
	w.receive(nil, message{topic: "status/gw-2/bridge", payload: []byte("1")}) // a bridge alone: not listed
	w.receive(nil, message{topic: "status/gw-3", payload: []byte(`{"state":"online"}`)})
	w.receive(nil, message{topic: "status/gw-3/bridge", payload: []byte("0")})
	w.receive(nil, message{topic: "status/gw-4", payload: []byte(`{not json`)})
	w.receive(nil, message{topic: "status/gw-5", payload: bytes.Repeat([]byte(" "), maxDocument+1)})
	w.receive(nil, message{topic: "status//bridge", payload: []byte("1")})
	gws := w.Gateways()
	if len(gws) != 2 || gws[0].ID != "gw-1" || gws[1].ID != "gw-3" {
		t.Fatalf("gateways: %+v", gws)
	}
	g := gws[0]
	if !g.Online() || g.State() != "online" || g.Doc.Labels["site"] != "berlin" || !g.Seen().Equal(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("gw-1: %+v", g)
	}
	if gws[1].Online() || gws[1].State() != "offline (link)" {
		t.Errorf("gw-3 with its bridge down: %s", gws[1].State())
	}
	if w.Dropped() != 3 {
		t.Errorf("dropped %d, want 3", w.Dropped())
	}
	w.receive(nil, message{topic: "status/gw-1"})
	if _, ok := w.Get("gw-1"); ok {
		t.Error("a cleared document left the gateway in the view")
	}
}

// TestWatchBound: past MaxGateways, new gateways are counted, not kept.
func TestWatchBound(t *testing.T) {
	w := newWatch()
	for i := range MaxGateways {
		w.gws[strconv.Itoa(i)] = &Gateway{}
	}
	w.receive(nil, message{topic: "status/one-more", payload: []byte(`{"state":"online"}`)})
	if _, ok := w.Get("one-more"); ok || w.Dropped() != 1 {
		t.Errorf("past the bound: kept %v, dropped %d", ok, w.Dropped())
	}
}

// FuzzWatch: whatever the cloud broker delivers on the status topics,
// the watch neither panics nor keeps more than it may.
func FuzzWatch(f *testing.F) {
	f.Add("status/gw-1", []byte(`{"id":"gw-1","state":"online","version":"v1","health":{"status":"ok"},"ota":{"state":"idle","cohort":3}}`))
	f.Add("status/gw-1/bridge", []byte("1"))
	f.Add("status/gw-1", []byte(`{"state":1}`))
	f.Add("status/gw-1", []byte(``))
	f.Add("status/a/b/c", []byte(`{}`))
	f.Add("status", []byte(`[]`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		w := newWatch()
		w.receive(nil, message{topic: topic, payload: payload})
		for _, g := range w.Gateways() {
			_ = g.State()
			_ = g.Seen()
			if g.ID == "" || strings.Contains(g.ID, "/") {
				t.Fatalf("gateway id %q from topic %q", g.ID, topic)
			}
		}
		var b bytes.Buffer
		if err := WriteTable(&b, w.Gateways(), time.Now()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSettle: the retained burst ends the wait after quiet, even while
// live documents keep coming (a large fleet's heartbeats).
func TestSettle(t *testing.T) {
	w := newWatch()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			w.receive(nil, message{topic: "status/gw-" + strconv.Itoa(i%50), payload: []byte(`{"state":"online"}`), live: true})
		}
	}()
	w.receive(nil, message{topic: "status/gw-r", payload: []byte(`{"state":"online"}`)})
	start := time.Now()
	w.Settle(t.Context(), 300*time.Millisecond, 10*time.Second)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Settle took %s with live documents every 20 ms; want about the quiet of 300 ms", took)
	}
	if _, ok := w.Get("gw-r"); !ok {
		t.Error("the retained document is not in the view")
	}
}

// TestWatchAfterReconnect: when the cloud broker restarts, the view
// subscribes again and keeps following the documents (a rollout watches
// for hours; a clean session forgets its subscriptions).
func TestWatchAfterReconnect(t *testing.T) {
	mq := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	c, err := Dial(t.Context(), &Settings{Broker: mq.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := c.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(mq.URL()).SetClientID("gateway").
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	publish := func(version string) {
		t.Helper()
		tok := pub.Publish("status/gw-1", 1, true, fmt.Sprintf(`{"id":"gw-1","state":"online","version":%q}`, version))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	publish("v1.0.0")
	version := func() string { g, _ := w.Get("gw-1"); return g.Doc.Version }
	testpeer.WaitFor(t, 10*time.Second, "the first document", func() bool { return version() == "v1.0.0" })
	mq.Stop()
	mq.Start()
	testpeer.WaitFor(t, 30*time.Second, "the document published after the broker restarted", func() bool {
		if pub.IsConnectionOpen() {
			publish("v2.0.0")
		}
		return version() == "v2.0.0"
	})
}
