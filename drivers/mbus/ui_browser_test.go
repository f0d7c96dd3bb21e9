package mbus

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

// TestTechnicianScan: on the technician's commissioning page in Debian's
// chromium, a write key scans the M-Bus line (the replay slave answers as
// a meter at primary address 5, secondary 2671859024232804) and sees the scan's progress while it
// runs, then the meter found and its device entry to paste into
// osgate.json; the browser's console has no error.
func TestTechnicianScan(t *testing.T) {
	b := testpeer.StartChromium(t)
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex")
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	rpcAddr := testpeer.Addr(testpeer.FreePort(t))
	const key = "ui-mbus-write-key-0123"
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-mbus-ui","state_dir":%q},"broker":{"managed":false,"url":%q},
		"rpc":{"listen":%q,"api_keys":[{"name":"technician","sha256":%q,"scope":"write"}]},
		"connectors":[{"name":"heat","type":"mbus","settings":{"port":%q,"baud":9600,"parity":"none","timeout":"1500ms"},"devices":[
		  {"name":"heat-5","interval":"1m","address":5,"channels":[{"name":"energy","quantity":"Energy"}]}]}]}`,
		t.TempDir(), br.URL(), rpcAddr, apikey.Hash(key), p.Path)
	_, logs := apptest.Start(t, doc, rpcAddr)
	base := "http://" + rpcAddr
	b.Run(t, 30*time.Second, "sign in",
		chromedp.Navigate(base+"/ui/commission"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#mode-heat")))
	// Addresses 3 to 7: the absent ones take a timeout each, time enough
	// to see the progress.
	b.Run(t, 30*time.Second, "start a scan",
		chromedp.SetValue(chromedp.CSS("#mode-heat"), "primary"),
		chromedp.SetValue(chromedp.CSS("#first-heat"), "3"),
		chromedp.SetValue(chromedp.CSS("#last-heat"), "7"),
		chromedp.Click(chromedp.CSS(`form[data-stream] button[type="submit"]`)))
	poll := func(within time.Duration, what, expr string) {
		t.Helper()
		b.Run(t, within+5*time.Second, what, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(within)))
	}
	poll(30*time.Second, "the scan's progress", `(function () {
		var p = document.querySelector('form[data-stream] .progress');
		return !p.hidden && /primary scan: tried \d+ \(\d of 5\)/.test(p.textContent);
	})()`)
	poll(90*time.Second, "the scan's result", `document.querySelector('#result section.result.ok table')`)
	c, cancelText := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancelText()
	res, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#result")))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := chromedp.Run(c, chromedp.Value(chromedp.CSS("#scan-json")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res, "1 meter found") || !strings.Contains(res, "5\t2671859024232804\tHYD") {
		t.Errorf("scan result: %q", res)
	}
	if !strings.Contains(entries, `"address"`) {
		t.Errorf("device entries to paste: %q", entries)
	}
	if l := logs.String(); !strings.Contains(l, `method=connector.command scope=write caller=technician`) {
		t.Errorf("the scan is not logged with the key's name:\n%s", l)
	}
	if probs := b.Problems(); len(probs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(probs, "\n"))
	}
}
