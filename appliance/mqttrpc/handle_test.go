package mqttrpc

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

func newUnstarted(t *testing.T, opts Options) (*Responder, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.URL == "" {
		opts.URL = "tcp://127.0.0.1:1"
	}
	if opts.GatewayID == "" {
		opts.GatewayID = gw
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.ids.close() })
	return r, logs
}

func TestNewRefuses(t *testing.T) {
	srv := newMethods(t, gw).srv
	base := Options{URL: "tcp://127.0.0.1:1883", GatewayID: gw, Server: srv, StateDir: t.TempDir()}
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no url", func(o *Options) { o.URL = "" }, "no broker URL"},
		{"no server", func(o *Options) { o.Server = nil }, "no rpc.Server"},
		{"no state dir", func(o *Options) { o.StateDir = "" }, "no state dir"},
		{"wildcard gateway", func(o *Options) { o.GatewayID = "gw/+" }, "gateway id"},
		{"bad public key", func(o *Options) { o.Operators = []apikey.Operator{{Name: "x", PublicKey: "abc"}} }, "[0].public_key"},
		{"bad scope", func(o *Options) { o.Operators = []apikey.Operator{{Name: "x", PublicKey: ops.pub, Scope: "all"}} }, "[0].scope"},
		{"same name", func(o *Options) {
			o.Operators = []apikey.Operator{{Name: "x", PublicKey: ops.pub}, {Name: "x", PublicKey: reader.pub}}
		}, "[1].name"},
		{"negative", func(o *Options) { o.MaxBody = -1 }, "must not be negative"},
	}
	for _, c := range cases {
		o := base
		c.edit(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	r, logs := newUnstarted(t, Options{Server: srv})
	if r.opts.ClientID != "osgate-rpc-"+gw || r.opts.MaxBody != rpc.DefaultMaxBody || r.opts.MaxLifetime != time.Hour {
		t.Fatalf("defaults: %+v", r.opts)
	}
	if !strings.Contains(logs.String(), "no operator keys") {
		t.Fatalf("no warning for a responder without keys:\n%s", logs)
	}
}

// A journal that cannot be written refuses the request: a restart would
// forget its id.
func TestJournalFailureRefuses(t *testing.T) {
	m := newMethods(t, gw)
	r, logs := newUnstarted(t, Options{Server: m.srv, Operators: testOperators()})
	r.ids.close() // appends now fail
	id, resp := r.handle(context.Background(), message{topic: r.reqTopic + "x1",
		payload: ops.sign("x1", soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`)})
	if id != "x1" {
		t.Fatalf("id %q", id)
	}
	wantError(t, decodeResponse(t, resp), rpc.CodeInternalError, "could not record the request id")
	if m.status.Load() != 0 {
		t.Fatalf("the method ran although its id was not recorded")
	}
	if !strings.Contains(logs.String(), "cannot record the request id") {
		t.Fatalf("not logged:\n%s", logs)
	}
}

func TestTooManyLiveIDs(t *testing.T) {
	m := newMethods(t, gw)
	r, _ := newUnstarted(t, Options{Server: m.srv, Operators: testOperators(), MaxIDs: 2})
	req := `{"jsonrpc":"2.0","method":"gateway.status","id":1}`
	for i, id := range []string{"a", "b", "c"} {
		_, resp := r.handle(context.Background(), message{topic: r.reqTopic + id, payload: ops.sign(id, soon(), req)})
		got := decodeResponse(t, resp)
		if i < 2 && got.Error != nil {
			t.Fatalf("%s: %v", id, got.Error)
		}
		if i == 2 {
			wantError(t, got, CodeBusy, "busy")
		}
	}
}

// With the one worker held up and the queue full, more requests are
// answered at once with CodeBusy; the others all run when it is free.
func TestBusyWhenQueueFull(t *testing.T) {
	mq := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	m := newMethods(t, gw)
	release := make(chan struct{})
	var ran atomic.Int64
	m.srv.Register("block", scope.Read, func(ctx context.Context, _ json.RawMessage) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		ran.Add(1)
		return "done", nil
	})
	run := startResponder(t, Options{URL: mq.URL(), GatewayID: gw, Operators: testOperators(), Server: m.srv,
		StateDir: t.TempDir(), Workers: 1})
	c := newCaller(t, mq.URL(), "cloud-app", gw)
	const n = queueLen + 10
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "q" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		c.send(t, ids[i], ops.sign(ids[i], soon(), `{"jsonrpc":"2.0","method":"block","id":1}`))
	}
	// At most one running and queueLen queued: the rest is busy.
	busy := run.out.waitFor(t, outBusy, n-queueLen-1)
	for _, id := range busy {
		b, ok := c.await(id, within)
		if !ok {
			t.Fatalf("no busy answer for %s", id)
		}
		wantError(t, decodeResponse(t, b), CodeBusy, "too many requests queued")
	}
	close(release)
	// Every request is answered: a result, or busy (all of those found
	// above, and maybe one more if the worker had not taken the first
	// request before the queue filled).
	nbusy := 0
	for _, id := range ids {
		b, ok := c.await(id, within)
		if !ok {
			t.Fatalf("no answer for request %s", id)
		}
		r := decodeResponse(t, b)
		switch {
		case r.Error == nil:
		case r.Error.Code == CodeBusy:
			nbusy++
		default:
			t.Fatalf("request %s: %v", id, r.Error)
		}
	}
	if nbusy < len(busy) || nbusy > n-queueLen {
		t.Fatalf("%d busy answers; want %d to %d", nbusy, len(busy), n-queueLen)
	}
	if got := ran.Load(); got != int64(n-nbusy) {
		t.Fatalf("the method ran %d times, want %d", got, n-nbusy)
	}
}
