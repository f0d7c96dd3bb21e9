package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/drivers/core"
)

// The actions: every form of the pages posts to /ui/act with its action
// and fields; the handler makes one JSON-RPC call of it in the
// technician's name and shows the answer. Without JavaScript the answer
// is a page; the script asks for application/x-ndjson instead and gets
// the command's progress as it comes ({"progress": {...}}), then the
// answer as a piece of HTML ({"html": "..."}).

// actionTimeout bounds one action (a secondary M-Bus scan of a long line
// takes minutes; a Z-Wave inclusion waits at most 10 minutes).
const actionTimeout = 15 * time.Minute

// actionResult is what an action did, for the result template.
type actionResult struct {
	Action string
	Title  string
	// Confirm asks before a write or a restart runs; the form repeats
	// the fields with confirm=yes.
	Confirm bool
	Fields  map[string]string
	Error   string
	// Forbidden: the key's scope does not allow the action.
	Forbidden bool
	Write     *struct {
		Device  string `json:"device"`
		Channel string `json:"channel"`
		Written any    `json:"written"`
	}
	Restarted string
	Read      *struct {
		Device   string `json:"device"`
		Readings []struct {
			Channel string `json:"channel"`
			Value   any    `json:"value"`
			Unit    string `json:"unit"`
			Time    string `json:"time"`
			Quality string `json:"quality"`
			Error   string `json:"error"`
		} `json:"readings"`
	}
	Scan     *scanResult
	ScanJSON string // the found meters as device entries, to paste
	Join     *joinResult
	Nodes    []map[string]any
	Validate *validateResult
	// Back is the page the action came from.
	Back string
}

// act runs the action of a form.
func (h *handler) act(w http.ResponseWriter, r *http.Request, u user) {
	f := r.PostForm
	res := &actionResult{Action: f.Get("action"), Back: safeNext(f.Get("back"))}
	stream := strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
	deadline(w, actionTimeout+time.Minute)
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	var send func(v any)
	if stream {
		w.Header().Set("Content-Type", "application/x-ndjson")
		s := &ndjson{w: w, rc: http.NewResponseController(w)}
		s.line(map[string]string{"started": res.Action})
		ctx = core.WithProgress(ctx, func(v any) { s.line(map[string]any{"progress": progressOf(v)}) })
		send = func(v any) { s.last(v) }
	}
	var err error
	switch res.Action {
	case "write":
		err = h.actWrite(ctx, u, f.Get, res)
	case "restart":
		res.Title = "Restart connector " + f.Get("connector")
		if res.Confirm = f.Get("confirm") != "yes"; res.Confirm {
			res.Fields = map[string]string{"connector": f.Get("connector")}
			break
		}
		var out struct {
			Restarted string `json:"restarted"`
		}
		if err = h.call(ctx, u, "connectors.restart", map[string]string{"name": f.Get("connector")}, &out); err == nil {
			res.Restarted = out.Restarted
		}
	case "read":
		res.Title = "Read " + f.Get("device") + " now"
		err = h.call(ctx, u, "device.read", map[string]string{"device": f.Get("device")}, &res.Read)
	case "scan":
		res.Title = "M-Bus scan on " + f.Get("connector")
		err = h.actScan(ctx, u, f.Get, res)
	case "include", "exclude":
		res.Title = "Z-Wave " + map[string]string{"include": "inclusion", "exclude": "exclusion"}[res.Action] + " on " + f.Get("connector")
		err = h.actJoin(ctx, u, res.Action, f.Get, res)
	case "nodes":
		res.Title = "Z-Wave nodes of " + f.Get("connector")
		err = h.command(ctx, u, f.Get("connector"), "nodes", map[string]any{}, &res.Nodes)
	case "validate":
		res.Title = "Validate a configuration"
		res.Validate = new(validateResult)
		err = h.call(ctx, u, "config.validate", map[string]string{"config": f.Get("config")}, res.Validate)
	default:
		http.Error(w, fmt.Sprintf("unknown action %.32q", res.Action), http.StatusBadRequest)
		return
	}
	if err != nil {
		res.Error = errText(err)
		var re *rpc.Error
		res.Forbidden = errors.As(err, &re) && re.Code == rpc.CodeForbidden
	}
	if stream {
		var buf bytes.Buffer
		h.exec(&buf, "act", "result", resultView{res, u})
		send(map[string]string{"html": buf.String()})
		return
	}
	d := pageData{Title: res.Title, Nav: "commission", User: u, SignedIn: true, Result: res}
	if res.Action == "validate" {
		d.ValidateText = f.Get("config")
	}
	h.render(w, "act", d)
}

// command runs a driver command of a connector (connector.command).
func (h *handler) command(ctx context.Context, u user, connector, name string, params, out any) error {
	return h.call(ctx, u, "connector.command", map[string]any{"connector": connector, "command": name, "params": params}, out)
}

func (h *handler) actWrite(ctx context.Context, u user, get func(string) string, res *actionResult) error {
	dev, ch, raw, kind := get("device"), get("channel"), get("value"), get("kind")
	if target := get("target"); target != "" { // ["device","channel","kind"] from the commissioning page's list
		var dck [3]string
		if err := json.Unmarshal([]byte(target), &dck); err != nil {
			return errors.New("choose a channel to write")
		}
		dev, ch, kind = dck[0], dck[1], dck[2]
	}
	res.Title = "Write " + dev + " · " + ch
	v, err := parseValue(raw, kind)
	if err != nil {
		return err
	}
	if res.Confirm = get("confirm") != "yes"; res.Confirm {
		res.Fields = map[string]string{"device": dev, "channel": ch, "value": raw, "kind": kind}
		return nil
	}
	return h.call(ctx, u, "device.write", map[string]any{"device": dev, "channel": ch, "value": v}, &res.Write)
}

// parseValue reads a value typed into a form, as the channel's kind says
// (from its last value): a number, true/false, or text; "auto" takes a
// number or a bool when it is one.
func parseValue(s, kind string) (any, error) {
	t := strings.TrimSpace(s)
	switch kind {
	case "text":
		return s, nil
	case "bool":
		switch strings.ToLower(t) {
		case "true", "1", "on":
			return true, nil
		case "false", "0", "off":
			return false, nil
		}
		return nil, fmt.Errorf("%.32q is not true or false", s)
	case "number":
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%.32q is not a number", s)
		}
		return f, nil
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return f, nil
	}
	if b, err := strconv.ParseBool(t); err == nil {
		return b, nil
	}
	return s, nil
}

func (h *handler) actScan(ctx context.Context, u user, get func(string) string, res *actionResult) error {
	params := map[string]any{}
	if m := get("mode"); m != "" {
		params["mode"] = m
	}
	for _, k := range []string{"first", "last"} {
		if s := strings.TrimSpace(get(k)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%s: %.16q is not a number", k, s)
			}
			params[k] = n
		}
	}
	res.Scan = new(scanResult)
	err := h.command(ctx, u, get("connector"), "scan", params, res.Scan)
	if err == nil {
		b, _ := json.MarshalIndent(res.Scan.Devices, "", "  ")
		res.ScanJSON = string(b)
	}
	return err
}

func (h *handler) actJoin(ctx context.Context, u user, action string, get func(string) string, res *actionResult) error {
	params := map[string]any{}
	if t := strings.TrimSpace(get("timeout")); t != "" {
		if _, err := strconv.Atoi(t); err == nil {
			t += "s"
		}
		params["timeout"] = t
	}
	if action == "include" {
		if s := get("security"); s != "" {
			params["security"] = s
		}
		if p := strings.TrimSpace(get("pin")); p != "" {
			params["pin"] = p
		}
		if get("downgrade") != "" {
			params["downgrade"] = true
		}
	}
	res.Join = new(joinResult)
	return h.command(ctx, u, get("connector"), action, params, res.Join)
}

// progressOf turns a command's progress (an M-Bus scan's, a Z-Wave
// inclusion's) into what the page shows: a sentence, and a fraction when
// the total is known.
func progressOf(v any) map[string]any {
	var p struct {
		Phase string `json:"phase"`
		Probe string `json:"probe"`
		Done  int    `json:"done"`
		Total int    `json:"total"`
		Found int    `json:"found"`
		Text  string `json:"text"`
	}
	b, _ := json.Marshal(v)
	json.Unmarshal(b, &p)
	out := map[string]any{"text": p.Text}
	if p.Text == "" {
		switch {
		case p.Total > 0:
			out["text"] = fmt.Sprintf("%s scan: tried %s (%d of %d), %d found", p.Phase, p.Probe, p.Done, p.Total, p.Found)
		case p.Phase != "":
			out["text"] = fmt.Sprintf("%s scan: tried %s (%d so far), %d found", p.Phase, p.Probe, p.Done, p.Found)
		default:
			out["text"] = string(b)
		}
	}
	if p.Total > 0 {
		out["done"], out["total"] = p.Done, p.Total
	}
	return out
}

// ndjson writes one JSON value a line and flushes it, from any goroutine,
// until the last one.
type ndjson struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	done bool
}

func (s *ndjson) line(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.write(v)
}

func (s *ndjson) last(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(v)
	s.done = true
}

func (s *ndjson) write(v any) {
	b, _ := json.Marshal(v)
	s.w.Write(append(b, '\n'))
	s.rc.Flush()
}
