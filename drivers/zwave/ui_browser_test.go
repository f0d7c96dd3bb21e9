package zwave

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestTechnicianInclusion: on the technician's commissioning page in
// Debian's chromium, a write key includes a Z-Wave node through the
// zwave-js mock controller (node 6 joins at the next inclusion), sees the
// inclusion's progress and then the node's answer (its id and command
// classes); the browser's console has no error.
func TestTechnicianInclusion(t *testing.T) {
	b := testpeer.StartChromium(t)
	m := startMock(t, "ZW_PENDING_NODE=6")
	tty := startPTY(t, m.addr)
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	rpcAddr := testpeer.Addr(testpeer.FreePort(t))
	const key = "ui-zwave-write-key-0123"
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-zw-ui","state_dir":%q},"broker":{"managed":false,"url":%q},
		"rpc":{"listen":%q,"api_keys":[{"name":"technician","sha256":%q,"scope":"write"}]},
		"connectors":[{"name":"zw","type":"zwave","settings":{"port":%q,"soft_reset":false,"report_timeout":"10s","dead_backoff":"30s"},"devices":[
		  {"name":"temp","node_id":2,"interval":"5m","timeout":"20s","channels":[{"name":"air_temperature"}]}]}]}`,
		t.TempDir(), br.URL(), rpcAddr, apikey.Hash(key), tty)
	_, logs := apptest.Start(t, doc, rpcAddr)
	b.Run(t, 30*time.Second, "sign in",
		chromedp.Navigate("http://"+rpcAddr+"/ui/commission"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#inc-to-zw")))
	// Every progress text the page shows, as it shows them: from the
	// mutation records, since texts that arrive together are set in one
	// task and the observer runs once after them.
	b.Run(t, 10*time.Second, "watch the progress", chromedp.Evaluate[chromedp.Void](`(function () {
		window.progressSeen = [];
		var el = document.querySelector('#inc-to-zw').form.querySelector('[data-progress-text]');
		new MutationObserver(function (records) {
			records.forEach(function (r) {
				if (r.type === "characterData") { window.progressSeen.push(r.target.data); return; }
				r.addedNodes.forEach(function (n) { window.progressSeen.push(n.textContent); });
			});
		}).observe(el, {childList: true, characterData: true, subtree: true});
	})()`))
	b.Run(t, 10*time.Second, "include",
		chromedp.SetValue(chromedp.CSS("#inc-to-zw"), "30"),
		chromedp.Click(chromedp.CSS(`#inc-to-zw ~ button[type="submit"]`)))
	b.Run(t, 95*time.Second, "the node's answer", chromedp.Poll[chromedp.Void](`document.querySelector('#result [data-join-status]')`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
	c, cancelRead := context.WithTimeout(b.Ctx, 120*time.Second)
	defer cancelRead()
	res, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#result")))
	if err != nil {
		t.Fatal(err)
	}
	seen, err := chromedp.Run(c, chromedp.Evaluate[[]string](`window.progressSeen`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res, "Outcome\nincluded") || !strings.Contains(res, "Node\n6") || !strings.Contains(res, "switch_binary") {
		t.Errorf("inclusion result: %q", res)
	}
	progress := strings.Join(seen, " | ")
	if !strings.Contains(progress, "inclusion started: press the node's button") || !strings.Contains(progress, "node 6") {
		t.Errorf("inclusion progress shown: %q", progress)
	}

	// The node list has the new node; an exclusion nobody answers says so.
	b.Run(t, 60*time.Second, "list the nodes",
		chromedp.Click(chromedp.CSS(`form.act input[value="nodes"] ~ button`)),
		chromedp.WaitVisible(chromedp.CSS(`#result caption`)))
	if nodes, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#result table"))); err != nil || !strings.Contains(nodes, "\n6\t") {
		t.Errorf("nodes: %q %v", nodes, err)
	}
	b.Run(t, 60*time.Second, "exclude",
		chromedp.SetValue(chromedp.CSS("#exc-to-zw"), "1"),
		chromedp.Click(chromedp.CSS(`#exc-to-zw ~ button[type="submit"]`)),
		chromedp.Poll[chromedp.Void](`(document.querySelector('#result [data-join-status]') || {}).textContent === 'no node answered'
			|| /^no node/.test((document.querySelector('#result [data-join-status]') || {textContent: ''}).textContent)`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(50*time.Second)))
	if l := logs.String(); !strings.Contains(l, `method=connector.command scope=write caller=technician`) {
		t.Errorf("the inclusion is not logged with the key's name:\n%s", l)
	}
	if probs := b.Problems(); len(probs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(probs, "\n"))
	}
}
