package appliance

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// hostEvery is how often gateway.status reads the machine again; calls in
// between get the last reading.
const hostEvery = 2 * time.Second

// host reads the gateway's own machine for gateway.status (CPU, memory,
// disk of the state dir, uptime, SoC temperature) through the "system"
// connector type, the same code that exports them when a configuration
// has a system connector: one copy of the /proc readers. A binary without
// that driver reports only osgate's own memory.
type host struct {
	mu     sync.Mutex
	poller core.Poller
	dev    *core.Device
	at     time.Time
	last   map[string]any
}

func newHost(stateDir string) *host {
	h := &host{}
	f, ok := core.Lookup("system")
	if !ok {
		return h
	}
	dev := &core.Device{Name: "gateway", Interval: hostEvery, Timeout: time.Second, Settings: json.RawMessage("{}")}
	conn, err := f(core.ConnectorConfig{Name: "gateway.status", Type: "system", Settings: json.RawMessage("{}"),
		Devices: []*core.Device{dev}, StateDir: stateDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return h
	}
	if p, ok := conn.(core.Poller); ok {
		h.poller, h.dev = p, dev
	}
	return h
}

// read returns the machine's figures by the system connector's channel
// names, with osgate's own memory (osgate_memory, bytes the Go runtime
// holds from the system).
func (h *host) read(ctx context.Context) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last != nil && time.Since(h.at) < hostEvery {
		return h.last
	}
	out := map[string]any{}
	if h.poller != nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		rs, _ := h.poller.Poll(pctx, h.dev)
		cancel()
		for _, r := range rs {
			if r.Quality != core.Bad {
				out[r.Channel] = r.Value
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		out["osgate_memory"] = int64(s[0].Value.Uint64())
	}
	h.at, h.last = time.Now(), out
	return out
}
