package mqttrpc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/internal/prom"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
)

const within = 30 * time.Second // generous: a loaded 2-core machine

// The test's operator keys: ops is the gateway's (rpc.operator_keys, scope
// admin); intruder signs under the same name with another key pair;
// reader is a second operator with scope read.
var (
	ops      = newOperator("cloud-ops", 1)
	intruder = newOperator("cloud-ops", 2)
	reader   = newOperator("dashboard", 3)
)

// operatorKey is an operator's key pair.
type operatorKey struct {
	name string
	priv ed25519.PrivateKey
	pub  string // base64, as rpc.operator_keys has it
}

func newOperator(name string, seed byte) operatorKey {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return operatorKey{name: name, priv: priv, pub: base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))}
}

// sign makes the message for request id on the test gateway gw.
func (o operatorKey) sign(id string, expires time.Time, request string) []byte {
	return o.signFor(gw, id, expires, request)
}

// signFor makes the message for request id on gateway.
func (o operatorKey) signFor(gateway, id string, expires time.Time, request string) []byte {
	b, err := Sign(o.priv, o.name, gateway, id, expires, []byte(request))
	if err != nil {
		panic(err)
	}
	return b
}

// methods is an rpc.Server with small stand-ins for the gateway's methods,
// counting their calls.
type methods struct {
	srv    *rpc.Server
	status atomic.Int64
	reads  atomic.Int64
	writes atomic.Int64
}

func newMethods(t testing.TB, gatewayID string) *methods {
	t.Helper()
	m := &methods{}
	srv, err := rpc.New(rpc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Register("gateway.status", scope.Read, func(ctx context.Context, _ json.RawMessage) (any, error) {
		m.status.Add(1)
		return map[string]any{"id": gatewayID, "health": map[string]string{"status": "ok"}, "caller": rpc.Caller(ctx)}, nil
	})
	srv.Register("device.read", scope.Read, func(_ context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Device string `json:"device" strict:"required"`
		}
		if err := rpc.Params(params, &p); err != nil {
			return nil, err
		}
		if p.Device != "meter-1" {
			return nil, rpc.InvalidParams(fmt.Sprintf("unknown device %q", p.Device))
		}
		m.reads.Add(1)
		return map[string]any{"device": p.Device, "readings": []map[string]any{{"channel": "voltage_l1", "value": 230.1, "unit": "V"}}}, nil
	})
	srv.Register("device.write", scope.Write, func(ctx context.Context, params json.RawMessage) (any, error) {
		m.writes.Add(1)
		return map[string]any{"written": params, "caller": rpc.Caller(ctx)}, nil
	})
	m.srv = srv
	return m
}

// testOperators are the gateway's operator keys in the tests.
func testOperators() []apikey.Operator {
	return []apikey.Operator{
		{Name: ops.name, PublicKey: ops.pub, Scope: "admin"},
		{Name: reader.name, PublicKey: reader.pub}, // no scope: read
	}
}

// logBuffer collects log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// outcomes records what the Responder did with each message, by id.
type outcomes struct {
	mu     sync.Mutex
	byID   map[string][]string
	change chan struct{}
}

func newOutcomes() *outcomes {
	return &outcomes{byID: map[string][]string{}, change: make(chan struct{})}
}

func (o *outcomes) add(id, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byID[id] = append(o.byID[id], outcome)
	close(o.change)
	o.change = make(chan struct{})
}

// wait returns the n-th (from 1) outcome of id, failing the test if it
// does not come within the deadline.
func (o *outcomes) wait(t testing.TB, id string, n int) string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		got, ch := o.byID[id], o.change
		o.mu.Unlock()
		if len(got) >= n {
			return got[n-1]
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no outcome #%d for request id %q within %s (have %v)", n, id, within, got)
		}
	}
}

// waitFor returns the ids with outcome once at least n have it.
func (o *outcomes) waitFor(t testing.TB, outcome string, n int) []string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		var ids []string
		o.mu.Lock()
		for id, outs := range o.byID {
			if slices.Contains(outs, outcome) {
				ids = append(ids, id)
			}
		}
		ch := o.change
		o.mu.Unlock()
		if len(ids) >= n {
			return ids
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%d requests with outcome %q within %s, want %d", len(ids), outcome, within, n)
		}
	}
}

// running is a Responder running in the background.
type running struct {
	r    *Responder
	out  *outcomes
	logs *logBuffer
	stop func() // stops it and waits until Run returned
}

func startResponder(t testing.TB, opts Options) *running {
	t.Helper()
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	out := newOutcomes()
	r.observe = out.add
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(within):
				t.Errorf("Run did not return within %s of its context ending", within)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("responder log:\n%s", logs.String())
		}
	})
	select {
	case <-r.ready:
	case err := <-done:
		t.Fatalf("Run returned before subscribing: %v", err)
	case <-time.After(within):
		t.Fatalf("the responder did not subscribe on %s within %s\n%s", opts.URL, within, logs.String())
	}
	return &running{r: r, out: out, logs: logs, stop: stop}
}

// caller is an MQTT client that publishes requests and collects responses.
type caller struct {
	client  mqtt.Client
	reqPre  string
	mu      sync.Mutex
	answers map[string][][]byte
	change  chan struct{}
	total   int
}

func newCaller(t testing.TB, url, clientID, gatewayID string) *caller {
	t.Helper()
	c := &caller{reqPre: "rpc/" + gatewayID + "/request/", answers: map[string][][]byte{}, change: make(chan struct{})}
	resPre := "rpc/" + gatewayID + "/response/"
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).
		SetConnectTimeout(10 * time.Second).SetAutoReconnect(true)
	c.client = mqtt.NewClient(o)
	if tok := c.client.Connect(); !tok.WaitTimeout(within) || tok.Error() != nil {
		t.Fatalf("caller: connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.client.Disconnect(250) })
	tok := c.client.Subscribe(resPre+"+", 1, func(_ mqtt.Client, m mqtt.Message) {
		id := m.Topic()[len(resPre):]
		c.mu.Lock()
		defer c.mu.Unlock()
		c.answers[id] = append(c.answers[id], append([]byte(nil), m.Payload()...))
		c.total++
		close(c.change)
		c.change = make(chan struct{})
	})
	if !tok.WaitTimeout(within) || tok.Error() != nil {
		t.Fatalf("caller: subscribe on %s: %v", url, tok.Error())
	}
	return c
}

func (c *caller) send(t testing.TB, id string, payload []byte) {
	t.Helper()
	c.sendTopic(t, c.reqPre+id, payload)
}

func (c *caller) sendTopic(t testing.TB, topic string, payload []byte) {
	t.Helper()
	if tok := c.client.Publish(topic, 1, false, payload); !tok.WaitTimeout(within) || tok.Error() != nil {
		t.Fatalf("caller: publish on %s: %v", topic, tok.Error())
	}
}

// await returns the first response on id, waiting at most d.
func (c *caller) await(id string, d time.Duration) ([]byte, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got, ch := c.answers[id], c.change
		c.mu.Unlock()
		if len(got) > 0 {
			return got[0], true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return nil, false
		}
	}
}

// call sends a request and returns its response.
func (c *caller) call(t testing.TB, id string, payload []byte) response {
	t.Helper()
	c.send(t, id, payload)
	b, ok := c.await(id, within)
	if !ok {
		t.Fatalf("no response to request %q within %s", id, within)
	}
	return decodeResponse(t, b)
}

func (c *caller) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.answers[id])
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *rpc.Error      `json:"error"`
	ID      json.RawMessage `json:"id"`
}

func decodeResponse(t testing.TB, b []byte) response {
	t.Helper()
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	if r.JSONRPC != "2.0" || (r.Error == nil) == (r.Result == nil) {
		t.Fatalf("response %s is not a JSON-RPC 2.0 response", b)
	}
	return r
}

// wantError checks that r is an error with code whose message contains
// what.
func wantError(t testing.TB, r response, code int, what string) {
	t.Helper()
	if r.Error == nil {
		t.Fatalf("got result %s, want error %d", r.Result, code)
	}
	if r.Error.Code != code || !bytes.Contains([]byte(r.Error.Message), []byte(what)) {
		t.Fatalf("got error %d %q, want %d containing %q", r.Error.Code, r.Error.Message, code, what)
	}
}

func soon() time.Time { return time.Now().Add(10 * time.Minute) }

func counterValue(t testing.TB, c *prom.Counter) float64 {
	t.Helper()
	return c.Value()
}
