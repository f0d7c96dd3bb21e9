package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestUnreachableThenReconnect: with nobody listening, Poll fails as a whole
// (and backs off); once the server is up, polls recover by themselves; when
// it goes away again, the device fails again, and comes back again.
func TestUnreachableThenReconnect(t *testing.T) {
	addr := testpeer.Addr(testpeer.FreePort(t))
	d := dev("m", 2, ch("hr5", `{"register":"holding","address":5}`))
	c := newConn(t, fmt.Sprintf(`{"transport":"tcp","address":%q,"timeout":"2s"}`, addr), d)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	if _, err := c.Poll(ctx, d); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Poll with no server: %v, want a connect error", err)
	}
	var down *errLinkDown
	if _, err := c.Poll(ctx, d); !errors.As(err, &down) {
		t.Fatalf("second Poll: %v, want the device down", err)
	}

	recovered := func() bool {
		rs, err := c.Poll(ctx, d)
		return err == nil && rs[0].Quality == core.Good && rs[0].Value == int64(38)
	}
	p := startPeer(t, peerOpts{tcp: true, tcpAddr: addr})
	waitFor(t, 60*time.Second, "poll after the server started", recovered)

	p.stop()
	waitFor(t, 60*time.Second, "a failed poll after the server stopped", func() bool {
		_, err := c.Poll(ctx, d)
		return errors.As(err, &down)
	})
	p = startPeer(t, peerOpts{tcp: true, tcpAddr: addr})
	waitFor(t, 60*time.Second, "poll after the server restarted", recovered)

	// A connection the server dropped while we were idle (a restart here;
	// devices that close idle connections alike) is replaced within the
	// same poll: no failed poll.
	p.stop()
	startPeer(t, peerOpts{tcp: true, tcpAddr: addr})
	if rs, err := c.Poll(ctx, d); err != nil || rs[0].Value != int64(38) {
		t.Fatalf("first poll on a connection the server dropped: %v %v", rs, err)
	}
}

// TestSharedLink: two connectors on one endpoint share one transport owner;
// conflicting line settings on one serial port are refused.
func TestSharedLink(t *testing.T) {
	p := startPeer(t, peerOpts{tcp: true})
	d1 := dev("a", 2, ch("hr5", `{"register":"holding","address":5}`))
	d2 := dev("b", 2, ch("ir7", `{"register":"input","address":7}`))
	s := fmt.Sprintf(`{"transport":"tcp","address":%q}`, p.tcp)
	c1, c2 := newConn(t, s, d1), newConn(t, s, d2)
	if pollOK(t, c1, d1)["hr5"].Value != int64(38) || pollOK(t, c2, d2)["ir7"].Value != int64(7) {
		t.Fatal("shared link read wrong values")
	}
	if c1.link == nil || c1.link != c2.link {
		t.Fatal("two connectors on one endpoint got two transport owners")
	}

	// Two connectors on one serial port must agree on the line; the second
	// one's polls fail until the first is closed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := "/dev/ttyOSGATE-test-" + t.Name()
	r1 := newConn(t, fmt.Sprintf(`{"port":%q,"baud":9600}`, port), d1)
	r2 := newConn(t, fmt.Sprintf(`{"port":%q,"baud":19200}`, port), d2)
	if _, err := r1.Poll(ctx, d1); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("poll of a missing port: %v", err)
	}
	if _, err := r2.Poll(ctx, d2); err == nil || !strings.Contains(err.Error(), "different line settings") {
		t.Fatalf("conflicting serial settings: %v", err)
	}
	r1.Close()
	if _, err := r2.Poll(ctx, d2); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("after the other connector closed: %v", err)
	}
	if _, err := r1.Poll(ctx, d1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("poll after Close: %v", err)
	}
}
