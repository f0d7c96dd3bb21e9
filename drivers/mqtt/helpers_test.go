package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/drivers/core"
)

// collector is an emit function that keeps every reading. gate, when set,
// is received from before each reading is accepted: the test holds the
// pipeline full by not sending.
type collector struct {
	mu     sync.Mutex
	rs     []core.Reading
	change chan struct{}
	gate   chan struct{}
	held   []core.Reading // readings emit was called with while waiting at gate
	refuse error          // returned by emit at the gate instead of waiting
}

func newCollector() *collector { return &collector{change: make(chan struct{})} }

func (c *collector) emit(ctx context.Context) func(...core.Reading) error {
	one := c.emitOne(ctx)
	return func(rs ...core.Reading) error {
		for _, r := range rs {
			if err := one(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// emitOne takes one reading as the pipeline would.
func (c *collector) emitOne(ctx context.Context) func(core.Reading) error {
	return func(r core.Reading) error {
		if c.gate != nil {
			c.mu.Lock()
			c.held = append(c.held, r)
			close(c.change)
			c.change = make(chan struct{})
			c.mu.Unlock()
			if c.refuse != nil {
				return c.refuse
			}
			select {
			case <-c.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.mu.Lock()
		c.rs = append(c.rs, r)
		close(c.change)
		c.change = make(chan struct{})
		c.mu.Unlock()
		return nil
	}
}

// waitHeldAtLeast waits until emit has been called at the gate n times.
func (c *collector) waitHeldAtLeast(t testing.TB, n int) {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		held, ch := len(c.held), c.change
		c.mu.Unlock()
		if held >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("emit was called %d times at the gate, want %d", held, n)
		}
	}
}

func (c *collector) readings() []core.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]core.Reading(nil), c.rs...)
}

// waitFor waits until cond holds for the readings so far, failing the test
// after within.
func (c *collector) waitFor(t testing.TB, within time.Duration, what string, cond func([]core.Reading) bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, ch := cond(c.rs), c.change
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waited %s for %s; have %d readings:\n%s", within, what, len(c.readings()), describe(c.readings(), 40))
		}
	}
}

// waitForOrNot waits up to within for cond and reports whether it held.
func (c *collector) waitForOrNot(within time.Duration, cond func([]core.Reading) bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, ch := cond(c.rs), c.change
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func describe(rs []core.Reading, max int) string {
	var lines []string
	for _, r := range rs {
		lines = append(lines, key(r))
	}
	sort.Strings(lines)
	if len(lines) > max {
		lines = append(lines[:max], "...")
	}
	return strings.Join(lines, "\n")
}

// key renders a reading as "device/channel=value unit [quality]".
func key(r core.Reading) string {
	s := fmt.Sprintf("%s/%s=%v", r.Device, r.Channel, r.Value)
	if r.Unit != "" {
		s += " " + r.Unit
	}
	if r.Quality != core.Good {
		s += " " + r.Quality.String()
	}
	return s
}

// listener runs a connector's Listen until stop is called (or the test
// ends) and fails the test if Listen returns an error other than the
// cancellation.
type listener struct {
	cancel context.CancelFunc
	done   chan error
}

func newConnector(t testing.TB, name, settings string, devices []*core.Device) *Connector {
	t.Helper()
	conn, err := New(core.ConnectorConfig{
		Name:     name,
		Type:     "mqtt",
		Settings: json.RawMessage(settings),
		Devices:  devices,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return conn.(*Connector)
}

func listen(t testing.TB, c *Connector, col *collector) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cancel: cancel, done: make(chan error, 1)}
	emit := col.emit(ctx)
	go func() { l.done <- c.Listen(ctx, emit) }()
	t.Cleanup(func() { l.stop(t) })
	return l
}

func (l *listener) stop(t testing.TB) {
	t.Helper()
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	select {
	case err := <-l.done:
		if err != nil && err != context.Canceled {
			t.Errorf("Listen returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("Listen did not return within 30s of cancellation")
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// publisher is a plain paho client for the test's field devices.
type publisher struct {
	t      testing.TB
	client paho.Client
}

type pubOpts struct {
	id, user, pass, ca string
}

func newPublisher(t testing.TB, url string, o pubOpts) *publisher {
	t.Helper()
	if o.id == "" {
		o.id = fmt.Sprintf("pub-%d", time.Now().UnixNano())
	}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(o.id).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetUsername(o.user).SetPassword(o.pass)
	if o.ca != "" {
		opts.SetTLSConfig(tlsFor(t, o.ca))
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher cannot connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{t: t, client: c}
}

func tlsFor(t testing.TB, caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: pool}
}

// publish sends one QoS 1 message and waits for the broker's PUBACK,
// sending again while the broker is away (duplicates are allowed).
func (p *publisher) publish(topic, payload string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tok := p.client.Publish(topic, 1, false, payload)
		if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("publish %s: not acknowledged within 60s: %v", topic, tok.Error())
		}
		time.Sleep(50 * time.Millisecond) // the broker is away: poll, do not spin
	}
}
