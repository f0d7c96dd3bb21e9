package mqttrpc

import (
	"fmt"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// callUntilAnswered sends the request under new ids (prefix-0, prefix-1,
// ...) until one is answered: for while a subscription is being set up,
// when a request may find no subscriber and be lost.
func callUntilAnswered(t *testing.T, c *caller, prefix string, payload func(id string) []byte) response {
	t.Helper()
	deadline := time.Now().Add(2 * within)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		c.send(t, id, payload(id))
		if b, ok := c.await(id, 2*time.Second); ok {
			return decodeResponse(t, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer to %s-* within %s", prefix, 2*within)
		}
	}
}

// The Responder reconnects to a broker that restarted without its
// persistence, subscribes again, and answers.
func TestReconnect(t *testing.T) {
	mq := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	m := newMethods(t, gw)
	run := startResponder(t, Options{URL: mq.URL(), GatewayID: gw, Operators: testOperators(), Server: m.srv, StateDir: t.TempDir()})
	status := func(id string) []byte {
		return ops.sign(id, soon(), `{"jsonrpc":"2.0","method":"gateway.status","id":1}`)
	}
	c := newCaller(t, mq.URL(), "app-1", gw)
	if r := c.call(t, "before", status("before")); r.Error != nil {
		t.Fatal(r.Error)
	}
	mq.Kill()
	mq.Start()
	t0 := time.Now()
	c2 := newCaller(t, mq.URL(), "app-2", gw)
	if r := callUntilAnswered(t, c2, "after", status); r.Error != nil {
		t.Fatalf("after the broker restarted: %v", r.Error)
	}
	t.Logf("answered %s after the restart", time.Since(t0))
	// Stopping while the broker is gone returns promptly.
	mq.Kill()
	t0 = time.Now()
	run.stop()
	t.Logf("stop took %s", time.Since(t0))
}

// Requests published while the Responder is away wait in its persistent
// session on the broker and are answered when it is back.
func TestQueuedWhileAway(t *testing.T) {
	mq := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	m := newMethods(t, gw)
	stateDir := t.TempDir()
	opts := Options{URL: mq.URL(), GatewayID: gw, Operators: testOperators(), Server: m.srv, StateDir: stateDir}
	first := startResponder(t, opts)
	first.stop()
	c := newCaller(t, mq.URL(), "app", gw)
	c.send(t, "while-away", ops.sign("while-away", soon(), `{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}`))
	startResponder(t, opts)
	b, ok := c.await("while-away", within)
	if !ok {
		t.Fatalf("the request sent while the responder was away was not answered within %s", within)
	}
	if r := decodeResponse(t, b); r.Error != nil {
		t.Fatal(r.Error)
	}
}
