package modbus

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/osgate/osgate/appliance/apptest"
	_ "github.com/osgate/osgate/drivers/system" // the overview's machine figures
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

// shotsEnv names the directory the browser test writes its screenshots
// to (docs/ui to refresh the README's); unset, it writes none.
const shotsEnv = "OSGATE_UI_SCREENSHOTS"

// TestTechnicianPages runs the whole gateway against the pymodbus peer
// and drives its technician's pages in Debian's chromium: a technician
// signs in with a write key, sees the meter online with its values, sees
// it go offline when the peer stops and come back when it starts again,
// without reloading the page (server-sent events); writes a channel
// after a confirmation and sees the meter read it back; then a read-only
// key sees everything and is refused the same write. The browser's
// console has no error throughout (a script error, a refused
// Content-Security-Policy, a failed load).
func TestTechnicianPages(t *testing.T) {
	b := testpeer.StartChromium(t)
	plcAddr := testpeer.Addr(testpeer.FreePort(t))
	p := startPeer(t, peerOpts{tcp: true, tcpAddr: plcAddr})
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	rpcAddr := testpeer.Addr(testpeer.FreePort(t))
	const writeKey, readKey = "ui-browser-write-key-0123", "ui-browser-read-key-4567"
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-ui","state_dir":%q},"broker":{"managed":false,"url":%q},
		"rpc":{"listen":%q,"api_keys":[{"name":"technician","sha256":%q,"scope":"write"},{"name":"viewer","sha256":%q,"scope":"read"}]},
		"connectors":[{"name":"line-1","type":"modbus","settings":{"address":%q,"timeout":"300ms"},"devices":[
		  {"name":"plc","unit_id":1,"interval":"1s","timeout":"1s","channels":[
		    {"name":"voltage","register":"input","address":10,"type":"float32","unit":"V"},
		    {"name":"setpoint","register":"holding","address":100,"unit":"°C","writable":true}]},
		  {"name":"meter-2","unit_id":2,"interval":"1s","timeout":"1s","channels":[
		    {"name":"hr5","register":"holding","address":5}]}]}]}`,
		t.TempDir(), br.URL(), rpcAddr, apikey.Hash(writeKey), apikey.Hash(readKey), plcAddr)
	_, logs := apptest.Start(t, doc, rpcAddr)
	base := "http://" + rpcAddr
	shots := os.Getenv(shotsEnv)
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		b.Screenshot(t, filepath.Join(shots, name+"-desktop.png"), false)
		b.Screenshot(t, filepath.Join(shots, name+"-phone.png"), true)
	}
	// waitJS waits until a JavaScript expression holds in the page.
	waitJS := func(within time.Duration, what, expr string) {
		t.Helper()
		b.Run(t, within+5*time.Second, what, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(within)))
	}
	text := func(sel string) string {
		t.Helper()
		c, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}
	signIn := func(key string) {
		t.Helper()
		// The gateway's root leads to the pages, and they to the sign-in.
		b.Run(t, 30*time.Second, "open the gateway", chromedp.Navigate(base+"/"))
		b.Run(t, 30*time.Second, "the sign-in form", chromedp.WaitVisible(chromedp.CSS("#key")))
		b.Run(t, 30*time.Second, "type the key", chromedp.SendKeys(chromedp.CSS("#key"), key))
		b.Run(t, 30*time.Second, "sign in", chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)))
		b.Run(t, 30*time.Second, "the overview", chromedp.WaitVisible(chromedp.CSS("#health-title")))
	}
	state := func(dev string) string {
		return fmt.Sprintf(`document.querySelector('[data-dev="%s"] [data-f="state"]')`, dev)
	}

	signIn(writeKey)
	if h := text("h1"); h != "Gateway gw-ui" {
		t.Errorf("overview heading %q", h)
	}
	waitJS(60*time.Second, "overview shows both devices online",
		`document.querySelector('#gw-title').parentNode.textContent.includes('2 online')`)
	shot("overview")

	b.Run(t, 30*time.Second, "devices page", chromedp.Navigate(base+"/ui/devices"), chromedp.WaitVisible(chromedp.CSS(`[data-dev="plc"]`)))
	waitJS(60*time.Second, "plc online with its voltage", state("plc")+`.textContent === 'online' &&
		document.querySelector('[data-dev="plc"] [data-ch="voltage"] [data-f="text"]').textContent === '230.1 V'`)
	waitJS(30*time.Second, "a trend of the voltage", `document.querySelector('[data-dev="plc"] [data-ch="voltage"] svg.spark polyline')`)
	shot("devices")

	// The meter goes away and comes back: the open page follows it.
	b.Run(t, 10*time.Second, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	p.stop()
	waitJS(60*time.Second, "both meters offline on the open page", state("plc")+`.textContent === 'offline' && `+state("meter-2")+`.textContent === 'offline'`)
	waitJS(10*time.Second, "the counts follow", `document.querySelector('p[data-counts]').textContent.trim() === '2 offline'`)
	// The poll that meets the server going away may fail on the open
	// connection ("reset by peer", "EOF"); the reconnects after it are
	// refused, and the page shows the latest reason.
	waitJS(60*time.Second, "the reason: connection refused", `document.querySelector('[data-dev="plc"] [data-f="reason"]').textContent.includes('connection refused')`)
	shot("devices-offline")
	startPeer(t, peerOpts{tcp: true, tcpAddr: plcAddr})
	waitJS(90*time.Second, "plc online again on the open page", state("plc")+`.textContent === 'online' && window.notReloaded === true`)

	// Read the meter now.
	b.Run(t, 30*time.Second, "read the meter now",
		chromedp.Navigate(base+"/ui/devices/plc"),
		chromedp.Click(chromedp.CSS(`form.act input[value="read"] ~ button`)),
		chromedp.WaitVisible(chromedp.CSS(`#result section.result.ok table`)))
	if r := text("#result table"); !strings.Contains(r, "voltage\t230.1 V\tgood") {
		t.Errorf("read now: %q", r)
	}

	// A write, confirmed, and read back from the meter.
	b.Run(t, 30*time.Second, "the device page", chromedp.Navigate(base+"/ui/devices/plc"), chromedp.WaitVisible(chromedp.CSS("#w-setpoint")))
	b.Run(t, 30*time.Second, "type the setpoint", chromedp.Clear(chromedp.CSS("#w-setpoint")), chromedp.SendKeys(chromedp.CSS("#w-setpoint"), "1234"))
	b.Run(t, 30*time.Second, "write the setpoint", chromedp.Click(chromedp.CSS(`form.write button[type="submit"]`)))
	b.Run(t, 30*time.Second, "the confirmation", chromedp.WaitVisible(chromedp.CSS(`#result form.confirm button[type="submit"]`)))
	if q := text("#result form.confirm"); !strings.Contains(q, "Write 1234 to channel setpoint of plc?") {
		t.Errorf("confirmation: %q", q)
	}
	shot("write-confirm")
	b.Run(t, 30*time.Second, "confirm the write",
		chromedp.Click(chromedp.CSS(`#result form.confirm button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result section.result.ok`)))
	if r := text("#result"); !strings.Contains(r, "Wrote 1234 to channel setpoint of plc") {
		t.Errorf("write result: %q", r)
	}
	waitJS(30*time.Second, "the meter reads the written value back",
		`document.querySelector('[data-ch="setpoint"] [data-f="text"]').textContent === '1234 °C'`)
	if l := logs.String(); !strings.Contains(l, `msg="rpc: write call" gateway=gw-ui part=rpc method=device.write scope=write caller=technician`) {
		t.Errorf("the write is not logged with the key's name:\n%s", l)
	}

	b.Run(t, 30*time.Second, "commissioning page", chromedp.Navigate(base+"/ui/commission"), chromedp.WaitVisible(chromedp.CSS("#config-text")))
	shot("commission")

	// A pasted configuration with a mistake: shown at its JSON path.
	bad := `{"gateway":{"id":"x"},"connectors":[{"name":"a","type":"modbus","settings":{"address":"127.0.0.1:502"},
		"devices":[{"name":"d","unit_id":1,"channels":[{"name":"c","register":"holdnig","address":1}]}]}]}`
	b.Run(t, 30*time.Second, "validate a configuration",
		chromedp.SetValue(chromedp.CSS("#config-text"), bad),
		chromedp.Click(chromedp.CSS(`#validate-title ~ form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result ul.problems`)))
	if r := text("#result ul.problems"); !strings.Contains(r, "connectors[0].devices[0].channels[0].register") {
		t.Errorf("validation problems: %q", r)
	}
	shot("validate")

	// Restart the connector, after a confirmation.
	b.Run(t, 30*time.Second, "restart the connector",
		chromedp.Click(chromedp.CSS(`section[aria-labelledby="act-line-1"] form.act button`)),
		chromedp.WaitVisible(chromedp.CSS(`#result form.confirm button[type="submit"]`)),
		chromedp.Click(chromedp.CSS(`#result form.confirm button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result section.result.ok`)))
	if r := text("#result"); !strings.Contains(r, "Connector line-1 restarted.") {
		t.Errorf("restart result: %q", r)
	}
	if l := logs.String(); !strings.Contains(l, `method=connectors.restart scope=write caller=technician`) {
		t.Errorf("the restart is not logged with the key's name:\n%s", l)
	}

	// The diagnostics bundle, as the page's link downloads it.
	c, cancelDiag := context.WithTimeout(b.Ctx, 30*time.Second)
	bundle, err := chromedp.Run(c, chromedp.Evaluate[string](`fetch(document.querySelector('a[href="/ui/diagnostics"]').href)
		.then(r => r.ok && r.headers.get('Content-Type') === 'application/gzip' ? r.arrayBuffer() : Promise.reject(r.status))
		.then(b => { let s = ''; new Uint8Array(b).forEach(c => s += String.fromCharCode(c)); return btoa(s); })`,
		chromedp.EvalAwaitPromise))
	cancelDiag()
	if err != nil {
		t.Fatalf("diagnostics bundle: %v", err)
	}
	files := untarGz(t, bundle)
	for _, name := range []string{"README.txt", "versions.json", "status.json", "config-status.json", "connectors.json", "devices.json", "values.json", "logs.txt", "metrics.txt", "config-note.json"} {
		if _, ok := files[name]; !ok {
			t.Errorf("diagnostics bundle has no %s: %v", name, slices.Sorted(maps.Keys(files)))
		}
	}
	if !strings.Contains(files["logs.txt"], `msg="ui: signed in"`) || !strings.Contains(files["metrics.txt"], "osgate_device_state") ||
		!strings.Contains(files["values.json"], `"setpoint"`) {
		t.Errorf("diagnostics bundle parts: logs %d bytes, metrics %d bytes, values %s", len(files["logs.txt"]), len(files["metrics.txt"]), files["values.json"])
	}
	for name, body := range files {
		for _, secret := range []string{writeKey, readKey, apikey.Hash(writeKey)} {
			if strings.Contains(body, secret) {
				t.Errorf("diagnostics %s holds a key or its hash", name)
			}
		}
	}

	// Every control of every page has a name a screen reader says.
	for _, page := range []string{"/ui/", "/ui/devices", "/ui/devices/plc", "/ui/commission", "/ui/logs"} {
		b.Run(t, 30*time.Second, "open "+page, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("main")))
		c, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		unnamed, err := chromedp.Run(c, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('input, select, textarea, button'))
			.filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
			.map(e => e.outerHTML)`))
		cancel()
		if err != nil || len(unnamed) > 0 {
			t.Errorf("%s: controls without a label: %v %v", page, unnamed, err)
		}
		// Every visible text is readable: WCAG AA contrast with what is
		// behind it (4.5:1, 3:1 for large text).
		c, cancel = context.WithTimeout(b.Ctx, 10*time.Second)
		low, err := chromedp.Run(c, chromedp.Evaluate[[]string](contrastJS))
		cancel()
		if err != nil || len(low) > 0 {
			t.Errorf("%s: text with too little contrast: %v %v", page, low, err)
		}
	}

	// A read-only key: it sees, and the gateway refuses its write.
	b.Run(t, 30*time.Second, "sign out",
		chromedp.Click(chromedp.CSS(`form.who button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#key")))
	signIn(readKey)
	b.Run(t, 30*time.Second, "write with a read key",
		chromedp.Navigate(base+"/ui/devices/plc"),
		chromedp.WaitVisible(chromedp.CSS("#w-setpoint")),
		chromedp.Clear(chromedp.CSS("#w-setpoint")),
		chromedp.SendKeys(chromedp.CSS("#w-setpoint"), "99"),
		chromedp.Click(chromedp.CSS(`form.write button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result form.confirm button[type="submit"]`)),
		chromedp.Click(chromedp.CSS(`#result form.confirm button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result section.result.bad`)))
	if r := text("#result"); !strings.Contains(r, "Not allowed") {
		t.Errorf("read key's write: %q", r)
	}
	if n := text(`main .notice`); !strings.Contains(n, "scope read") {
		t.Errorf("the read key's page does not say it cannot act: %q", n)
	}
	// Two more polls: the meter still holds the technician's value.
	time.Sleep(2500 * time.Millisecond)
	if v := text(`[data-ch="setpoint"] [data-f="text"]`); v != "1234 °C" {
		t.Errorf("setpoint after the refused write: %q", v)
	}
	if l := logs.String(); !strings.Contains(l, `caller=viewer`) || !strings.Contains(l, "call refused") {
		t.Errorf("the refused write is not logged with the key's name:\n%s", l)
	}
	for _, secret := range []string{writeKey, readKey} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a key is in the gateway's log")
		}
	}

	// With JavaScript off, the read-only pages still show everything.
	c, cancelNoJS := context.WithTimeout(b.Ctx, 10*time.Second)
	_, err = chromedp.Run(c, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	cancelNoJS()
	if err != nil {
		t.Fatalf("turn JavaScript off: %v", err)
	}
	b.Run(t, 30*time.Second, "devices without JavaScript", chromedp.Navigate(base+"/ui/devices"), chromedp.WaitVisible(chromedp.CSS(`[data-dev="plc"]`)))
	if v, s := text(`[data-dev="plc"] [data-ch="voltage"] [data-f="text"]`), text(`[data-dev="plc"] [data-f="state"]`); v != "230.1 V" || s != "online" {
		t.Errorf("devices without JavaScript: plc %q, voltage %q", s, v)
	}
	b.Run(t, 30*time.Second, "overview without JavaScript", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#health-title")))
	if h := text("#health-title"); !strings.Contains(h, "Health:") {
		t.Errorf("overview without JavaScript: %q", h)
	}
	if probs := b.Problems(); len(probs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(probs, "\n"))
	}
}

// untarGz reads a base64 .tar.gz into its files' text, by base name.
func untarGz(t *testing.T, b64 string) map[string]string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("bundle: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("bundle %s: %v", h.Name, err)
		}
		out[path.Base(h.Name)] = string(body)
	}
}

// contrastJS lists the visible texts of a page whose colour has less than
// WCAG AA contrast with the background they are drawn on: the first
// opaque background of the element or an ancestor (white at the root),
// with semi-transparent colours and backgrounds laid over it.
const contrastJS = `(() => {
  const rgba = s => { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const over = (top, under) => ({r: top.r*top.a + under.r*(1-top.a), g: top.g*top.a + under.g*(1-top.a), b: top.b*top.a + under.b*(1-top.a), a: 1});
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v/12.92 : Math.pow((v+0.055)/1.055, 2.4); }; return 0.2126*f(c.r) + 0.7152*f(c.g) + 0.0722*f(c.b); };
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(el);
    if (st.visibility !== 'visible' || !el.getClientRects().length || st.clip === 'rect(0px, 0px, 0px, 0px)') continue;
    const bg = background(el), fg = over(rgba(st.color), bg);
    const l1 = lum(fg), l2 = lum(bg), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
  }
  return out;
})()`
