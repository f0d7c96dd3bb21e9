package fleet

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/internal/topic"
)

// Gateway is one gateway as the fleet sees it: its last status document
// and its bridge's state on the cloud broker.
type Gateway struct {
	ID string `json:"id"`
	// Doc is the retained document on status/{id}.
	Doc export.GatewayStatus `json:"status"`
	// Bridge is status/{id}/bridge: "1" (connected), "0" (the bridge's
	// will: the link is gone), "" (not seen).
	Bridge string `json:"bridge,omitempty"`
	// Received is when this tool last got the document.
	Received time.Time `json:"-"`
}

// Online: the document says online and the bridge is not known down
// (docs/status.md: either alone can be stale).
func (g Gateway) Online() bool { return g.Doc.State == "online" && g.Bridge != "0" }

// State is "online", or "offline" with what says so.
func (g Gateway) State() string {
	switch {
	case g.Doc.State == "":
		return "unknown"
	case g.Online():
		return "online"
	case g.Doc.State == "online":
		return "offline (link)"
	}
	return "offline"
}

// Seen is when the gateway made its last document (zero if unknown).
func (g Gateway) Seen() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, g.Doc.At)
	return t
}

// Health is the document's health verdict ("" when it carries none).
func (g Gateway) Health() string {
	if g.Doc.Health == nil {
		return ""
	}
	return g.Doc.Health.Status
}

// Bounds of what the cloud broker can make this tool keep.
const (
	// MaxGateways is the most gateways a view keeps.
	MaxGateways = 200000
	// maxDocument is the largest status document read.
	maxDocument = 64 << 10
)

// Watch keeps the fleet's status documents as they arrive.
type Watch struct {
	mu      sync.Mutex
	gws     map[string]*Gateway
	last    time.Time // the last retained message
	dropped int       // documents over the bounds
	changed chan struct{}
}

// Watch subscribes to every gateway's status document and bridge state;
// the broker sends what it retains at once, then every change.
func (c *Conn) Watch(ctx context.Context) (*Watch, error) {
	w := &Watch{gws: map[string]*Gateway{}, changed: make(chan struct{})}
	err := c.subscribe(ctx, 0, w.receive, topic.GatewayStatus("+"), topic.BridgeStatus("+"))
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Watch) receive(_ mqtt.Client, m mqtt.Message) {
	levels := strings.Split(m.Topic(), "/")
	if len(levels) < 2 || len(levels) > 3 || levels[1] == "" || len(m.Payload()) > maxDocument {
		w.drop()
		return
	}
	id := levels[1]
	var doc export.GatewayStatus
	if len(levels) == 2 && len(m.Payload()) > 0 {
		if err := json.Unmarshal(m.Payload(), &doc); err != nil {
			w.drop()
			return
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if m.Retained() {
		w.last = now
	}
	g := w.gws[id]
	if g == nil {
		if len(w.gws) >= MaxGateways {
			w.dropped++
			return
		}
		g = &Gateway{ID: id}
		w.gws[id] = g
	}
	if len(levels) == 3 {
		g.Bridge = string(m.Payload())
	} else {
		g.Doc, g.Received = doc, now
		if len(m.Payload()) == 0 {
			delete(w.gws, id) // a cleared document: the gateway is gone
		}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *Watch) drop() {
	w.mu.Lock()
	w.dropped++
	w.mu.Unlock()
}

// Settle waits until the broker's retained documents have arrived: no
// retained message for quiet (they come in one burst after the
// subscription), at most max. Live documents (heartbeats, changes: not
// flagged retained) do not count, so a large fleet that is never quiet
// still settles.
func (w *Watch) Settle(ctx context.Context, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	start := time.Now()
	for {
		w.mu.Lock()
		last := w.last
		w.mu.Unlock()
		if last.IsZero() {
			last = start
		}
		wait := min(time.Until(last.Add(quiet)), time.Until(deadline))
		if wait <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Gateways is every gateway seen, by id.
func (w *Watch) Gateways() []Gateway {
	w.mu.Lock()
	out := make([]Gateway, 0, len(w.gws))
	for _, g := range w.gws {
		if g.Doc.State != "" {
			out = append(out, *g)
		}
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Get is one gateway's view (false when not seen).
func (w *Watch) Get(id string) (Gateway, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.gws[id]
	if g == nil || g.Doc.State == "" {
		return Gateway{}, false
	}
	return *g, true
}

// Changed returns a channel closed at the next message.
func (w *Watch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Dropped is how many messages were ignored: malformed, too large, or
// past MaxGateways.
func (w *Watch) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}
