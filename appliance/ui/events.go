package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The devices pages follow the gateway with server-sent events: every
// eventTick the stream asks devices.list and devices.values (in the
// technician's name, like any page) and sends each device whose state or
// values changed, as one "device" event. A stream ends after streamFor
// (the browser connects again at once) or when its session ends
// ("signout" event).

const (
	eventTick = time.Second
	streamFor = 10 * time.Minute
)

// deviceEvent is one device as the script updates it.
type deviceEvent struct {
	Name      string         `json:"name"`
	State     string         `json:"state"`
	StateText string         `json:"state_text"`
	Since     string         `json:"since"`
	Reason    string         `json:"reason,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	Failures  int            `json:"failures"`
	Channels  []channelEvent `json:"channels"`
}

// channelEvent is one channel's last value: the text the page shows, and
// the number for its trend.
type channelEvent struct {
	Channel string   `json:"channel"`
	Text    string   `json:"text"`
	Quality string   `json:"quality,omitempty"`
	Seen    int64    `json:"seen,omitempty"` // unix ms
	N       *float64 `json:"n,omitempty"`
	Error   string   `json:"error,omitempty"`
	ErrorAt string   `json:"error_at,omitempty"`
	Errors  uint64   `json:"errors"`
}

func (h *handler) events(w http.ResponseWriter, r *http.Request, u user) {
	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		http.Error(w, fmt.Sprintf("too many open pages follow the gateway (%d); close some", maxStreams), http.StatusServiceUnavailable)
		return
	}
	device := r.URL.Query().Get("device")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	ctx := r.Context()
	send := func(event string, v any) bool {
		b, _ := json.Marshal(v)
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprint(w, "retry: 2000\n\n")
	rc.Flush()
	last := map[string]string{}
	end := time.NewTimer(streamFor)
	defer end.Stop()
	tick := time.NewTicker(eventTick)
	defer tick.Stop()
	for {
		cur, ok := h.signedIn(r)
		if !ok {
			send("signout", map[string]string{"to": "/ui/login"})
			return
		}
		groups, _ := h.deviceGroups(r, cur, device, 0)
		for _, g := range groups {
			for _, dv := range g.Devices {
				ev := eventOf(dv)
				b, _ := json.Marshal(ev)
				if last[dv.Name] == string(b) {
					continue
				}
				last[dv.Name] = string(b)
				if !send("device", ev) {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}

func eventOf(dv deviceView) deviceEvent {
	ev := deviceEvent{Name: dv.Name, State: dv.State, StateText: stateWord(dv.State), Since: dv.Since, Reason: dv.Reason,
		LastError: dv.LastError, Failures: dv.Failures, Channels: []channelEvent{}}
	for _, ch := range dv.Channels {
		ce := channelEvent{Channel: ch.Channel, Text: withUnit(ch.Value, ch.Unit), Quality: ch.Quality,
			Error: ch.Error, ErrorAt: ch.ErrorAt, Errors: ch.Errors}
		if t := parseTime(ch.Seen); !t.IsZero() {
			ce.Seen = t.UnixMilli()
		}
		switch v := ch.Value.(type) {
		case float64:
			ce.N = &v
		case bool:
			f := 0.0
			if v {
				f = 1
			}
			ce.N = &f
		}
		ev.Channels = append(ev.Channels, ce)
	}
	return ev
}
