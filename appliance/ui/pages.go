package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

//go:embed templates/*.html
var templateFiles embed.FS

// pageData is what every template gets; each page fills its part.
type pageData struct {
	Title    string
	Nav      string // the page's menu entry
	User     user
	SignedIn bool
	Next     string
	Error    string
	Path     string
	// Live is the event stream a page follows (devices), Refresh how
	// often a page without one reloads its main part, in seconds.
	Live    string
	Refresh int
	// Failed lists calls a page could not make (it shows the rest).
	Failed []string

	Status       *gatewayStatus
	Config       *configStatus
	OTA          *otaStatus
	HasOTA       bool
	Groups       []connGroup
	Counts       []stateCount
	Device       *deviceView
	Connectors   []connectorInfo
	Writable     []writable
	Logs         *logsResult
	LogLevel     string
	Result       *actionResult
	ValidateText string
}

// resultView is what the result template shows: the action's answer, and
// the user (a confirmation is a form with their CSRF token).
type resultView struct {
	R    *actionResult
	User user
}

// ResultView is the page's action result for the result template.
func (d pageData) ResultView() resultView { return resultView{d.Result, d.User} }

// connGroup is a connector and its devices, for the devices page.
type connGroup struct {
	Conn    connectorInfo
	Devices []deviceView
}

// deviceView is a device with its channels' last values.
type deviceView struct {
	deviceInfo
	Channels []channelValue
}

// writable is a channel a write key may set.
type writable struct {
	Device, Channel, Unit, Kind string
	Value                       any
}

// Target is the channel as the commissioning page's list names it.
func (w writable) Target() string {
	b, _ := json.Marshal([3]string{w.Device, w.Channel, w.Kind})
	return string(b)
}

type stateCount struct {
	State string
	N     int
}

// templates are the pages, each the layout with its content, parsed when
// the first page is shown (not at start: a gateway nobody looks at keeps
// none of it in memory).
var templates = sync.OnceValue(parseTemplates)

func parseTemplates() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/parts.html"))
	pages := map[string]*template.Template{}
	entries, err := templateFiles.ReadDir("templates")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, "templates/"+e.Name()))
	}
	return pages
}

// render writes a whole page.
func (h *handler) render(w http.ResponseWriter, page string, d pageData) {
	h.exec(w, page, "layout", d)
}

// exec runs one template of a page into w, through a buffer: a template
// error is a 500, never half a page.
func (h *handler) exec(w io.Writer, page, name string, d any) {
	var buf bytes.Buffer
	if err := templates()[page].ExecuteTemplate(&buf, name, d); err != nil {
		h.log.Error("ui: render", "page", page, "template", name, "err", err)
		if rw, ok := w.(http.ResponseWriter); ok {
			http.Error(rw, "the page could not be rendered (see the gateway's log)", http.StatusInternalServerError)
		}
		return
	}
	if rw, ok := w.(http.ResponseWriter); ok && rw.Header().Get("Content-Type") == "" {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.Write(buf.Bytes())
}

// overview is the gateway at a glance.
func (h *handler) overview(w http.ResponseWriter, r *http.Request, u user) {
	d := pageData{Title: "Overview", Nav: "overview", User: u, SignedIn: true, Refresh: 5}
	ctx := r.Context()
	d.Status = new(gatewayStatus)
	if err := h.call(ctx, u, "gateway.status", nil, d.Status); err != nil {
		d.Failed = append(d.Failed, "gateway.status: "+errText(err))
		d.Status = nil
	} else {
		d.Counts = counts(d.Status.Health.Devices)
	}
	d.Config = new(configStatus)
	if err := h.call(ctx, u, "gateway.config.status", nil, d.Config); err != nil {
		d.Failed = append(d.Failed, "gateway.config.status: "+errText(err))
		d.Config = nil
	}
	if d.HasOTA = h.has("ota.status"); d.HasOTA {
		d.OTA = new(otaStatus)
		if err := h.call(ctx, u, "ota.status", nil, d.OTA); err != nil {
			d.Failed = append(d.Failed, "ota.status: "+errText(err))
			d.OTA = nil
		}
	}
	h.render(w, "overview", d)
}

// counts orders the device counts as the pages show them.
func counts(m map[string]int) []stateCount {
	var out []stateCount
	for _, s := range []string{"online", "degraded", "offline", "unknown", "disabled"} {
		if m[s] > 0 {
			out = append(out, stateCount{s, m[s]})
		}
	}
	return out
}

// sparkPoints is how many trend points the devices page draws per channel.
const sparkPoints = 40

// devices lists every device by connector, with its last values.
func (h *handler) devices(w http.ResponseWriter, r *http.Request, u user) {
	d := pageData{Title: "Devices", Nav: "devices", User: u, SignedIn: true, Live: "/ui/events"}
	groups, failed := h.deviceGroups(r, u, "", sparkPoints)
	d.Groups, d.Failed = groups, failed
	m := map[string]int{}
	for _, g := range groups {
		for _, dv := range g.Devices {
			m[dv.State]++
		}
	}
	d.Counts = counts(m)
	h.render(w, "devices", d)
}

// deviceGroups gathers connectors, devices and values (of one device, or
// all when device is "").
func (h *handler) deviceGroups(r *http.Request, u user, device string, points int) ([]connGroup, []string) {
	ctx := r.Context()
	var failed []string
	var conns []connectorInfo
	if err := h.call(ctx, u, "connectors.list", nil, &conns); err != nil {
		failed = append(failed, "connectors.list: "+errText(err))
	}
	var devs []deviceInfo
	if err := h.call(ctx, u, "devices.list", nil, &devs); err != nil {
		failed = append(failed, "devices.list: "+errText(err))
	}
	params := map[string]any{"points": points}
	if device != "" {
		params["device"] = device
	}
	var vals []deviceValues
	if err := h.call(ctx, u, "devices.values", params, &vals); err != nil && device == "" {
		failed = append(failed, "devices.values: "+errText(err))
	}
	byDev := map[string][]channelValue{}
	for _, v := range vals {
		byDev[v.Device] = v.Channels
	}
	var groups []connGroup
	index := map[string]int{}
	for _, c := range conns {
		index[c.Name] = len(groups)
		groups = append(groups, connGroup{Conn: c})
	}
	for _, dv := range devs {
		if device != "" && dv.Name != device {
			continue
		}
		i, ok := index[dv.Connector]
		if !ok { // a disabled connector: not running, not in connectors.list
			i = len(groups)
			index[dv.Connector] = i
			groups = append(groups, connGroup{Conn: connectorInfo{Name: dv.Connector, Type: dv.Type, Kind: "disabled"}})
		}
		groups[i].Devices = append(groups[i].Devices, deviceView{deviceInfo: dv, Channels: byDev[dv.Name]})
	}
	return groups, failed
}

// device shows one device with its channels, trends and actions.
func (h *handler) device(w http.ResponseWriter, r *http.Request, u user) {
	name := r.PathValue("name")
	groups, failed := h.deviceGroups(r, u, name, maxTrend)
	d := pageData{Title: name, Nav: "devices", User: u, SignedIn: true, Failed: failed,
		Live: "/ui/events?device=" + url.QueryEscape(name)}
	for _, g := range groups {
		for i := range g.Devices {
			d.Device = &g.Devices[i]
			d.Connectors = []connectorInfo{g.Conn}
		}
	}
	if d.Device == nil {
		w.WriteHeader(http.StatusNotFound)
		d.Title, d.Error, d.Live = "No such device", "There is no configured device "+name+": see the list of devices.", ""
		h.render(w, "notfound", d)
		return
	}
	d.Writable = writables([]deviceView{*d.Device})
	h.render(w, "device", d)
}

// maxTrend is every point the gateway keeps.
const maxTrend = 120

// writables lists the writable channels of devs, with the kind of value
// each takes (from its last value).
func writables(devs []deviceView) []writable {
	var out []writable
	for _, dv := range devs {
		for _, ch := range dv.Channels {
			if ch.Writable {
				out = append(out, writable{Device: dv.Name, Channel: ch.Channel, Unit: ch.Unit, Kind: kindOf(ch.Value), Value: ch.Value})
			}
		}
	}
	return out
}

func kindOf(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case string:
		return "text"
	case float64:
		return "number"
	}
	return "auto"
}

// commission is the actions page.
func (h *handler) commission(w http.ResponseWriter, r *http.Request, u user) {
	h.render(w, "commission", h.commissionData(r, u))
}

func (h *handler) commissionData(r *http.Request, u user) pageData {
	d := pageData{Title: "Commissioning", Nav: "commission", User: u, SignedIn: true}
	groups, failed := h.deviceGroups(r, u, "", 0)
	d.Failed = failed
	var all []deviceView
	for _, g := range groups {
		if g.Conn.Kind != "disabled" {
			d.Connectors = append(d.Connectors, g.Conn)
		}
		all = append(all, g.Devices...)
	}
	d.Writable = writables(all)
	return d
}

// logs shows the recent log lines.
func (h *handler) logs(w http.ResponseWriter, r *http.Request, u user) {
	level := r.URL.Query().Get("level")
	switch level {
	case "warn", "error":
	default:
		level = "info"
	}
	d := pageData{Title: "Log", Nav: "logs", User: u, SignedIn: true, LogLevel: level, Refresh: 5}
	d.Logs = new(logsResult)
	if err := h.call(r.Context(), u, "gateway.logs", map[string]any{"level": level, "limit": 300}, d.Logs); err != nil {
		d.Failed = append(d.Failed, "gateway.logs: "+errText(err))
		d.Logs = nil
	} else {
		// Newest first: what a technician looks for.
		lines := d.Logs.Lines
		for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
			lines[i], lines[j] = lines[j], lines[i]
		}
	}
	h.render(w, "logs", d)
}
