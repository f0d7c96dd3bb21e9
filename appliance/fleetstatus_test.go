package appliance

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/testpeer"
)

// gatewayDocs subscribes to the gateway document of gw-test.
func gatewayDocs(t *testing.T, tg *testGateway, client string) *testpeer.Subscriber {
	t.Helper()
	return testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: client, Filter: "status/gw-test", Username: appUser, Password: appPass})
}

// waitDoc waits for a gateway document that match accepts.
func waitDoc(t *testing.T, sub *testpeer.Subscriber, within time.Duration, what string, match func(export.GatewayStatus) bool) export.GatewayStatus {
	t.Helper()
	var doc export.GatewayStatus
	_, ok := sub.WaitMessage(within, func(m testpeer.Message) bool {
		var d export.GatewayStatus
		if json.Unmarshal(m.Payload, &d) != nil || !match(d) {
			return false
		}
		doc = d
		return true
	})
	if !ok {
		var seen []string
		for _, m := range sub.Messages() {
			seen = append(seen, string(m.Payload))
		}
		t.Fatalf("no gateway document %s within %s; received:\n%s", what, within, strings.Join(seen, "\n"))
	}
	return doc
}

// TestGatewayDocument: the retained gateway document carries what the
// fleet needs (id, version, boot, uptime, health with reasons, config
// version and origin, the update agent's state, device counts, spool
// depth, labels), is published again at once when any of that changes,
// and not while only the uptime, the spool's depth or the numbers in a
// reason move; its will carries the labels.
func TestGatewayDocument(t *testing.T) {
	switchModes.Store("fd-1", "ok")
	var ota atomic.Pointer[export.OTAStatus]
	ota.Store(&export.OTAStatus{State: "idle", Status: "idle: v1.0.0 is current"})
	doc := strings.Replace(withAppUser(fmt.Sprintf(envelope, `{"name":"fs","type":"test-switch","devices":[{"name":"fd-1","interval":"100ms"}]}`)),
		`"gateway": {"id": "gw-test", "state_dir": "STATE"}`,
		`"gateway": {"id": "gw-test", "state_dir": "STATE", "labels": {"site": "berlin", "hw": "pi4"}, "status_interval": "1h"}`, 1)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tg := startGatewayWith(t, doc, log, func(g *Gateway) {
		g.otaStatus = func() *export.OTAStatus { return ota.Load() }
		g.configStatus = func() source.Status {
			return source.Status{Source: "remote", Version: "25e64790de4a0011223344", LastOutcome: "refused", LastError: "signature does not match the document",
				BadVersions: []source.BadVersion{{Version: "aaaaaaaaaaaa11"}, {Version: "bbbbbbbbbbbb22"}, {Version: "cccccccccccc33"}, {Version: "dddddddddddd44"}}}
		}
	})
	sub := gatewayDocs(t, tg, "t-doc")
	// Health is degraded for a moment at the start (the export not yet
	// connected): wait for the settled document.
	d := waitDoc(t, sub, 30*time.Second, "online with the device online and health ok", func(d export.GatewayStatus) bool {
		return d.State == "online" && d.Devices["online"] == 1 && d.Health != nil && d.Health.Status == "ok"
	})
	switch {
	case d.ID != "gw-test" || d.Version != Version || d.Boot != bootID || d.Since == "" || d.At == "":
		t.Errorf("identity: %+v", d)
	case d.Labels["site"] != "berlin" || d.Labels["hw"] != "pi4":
		t.Errorf("labels: %v", d.Labels)
	case d.Config == nil || d.Config.Version != "25e64790de4a" || d.Config.Origin != "remote" ||
		d.Config.Error != "signature does not match the document" || strings.Join(d.Config.Bad, ",") != "bbbbbbbbbbbb,cccccccccccc,dddddddddddd":
		t.Errorf("config: %+v", d.Config)
	case d.OTA == nil || d.OTA.State != "idle":
		t.Errorf("ota: %+v", d.OTA)
	case d.Spool == nil:
		t.Error("no spool depth")
	}

	// Nothing changes but the uptime and the spool (readings flow every
	// 100 ms): no document for 3 s, with a heartbeat of an hour.
	time.Sleep(500 * time.Millisecond)
	n := len(sub.Messages())
	time.Sleep(3 * time.Second)
	if more := sub.Messages()[n:]; len(more) > 0 {
		t.Errorf("%d documents while nothing changed, the first: %s", len(more), more[0].Payload)
	}

	// The update agent's state changes: published at once. Its progress
	// alone does not count as a change.
	ota.Store(&export.OTAStatus{State: "downloading", Status: "downloading v1.1.0 0%", Target: "v1.1.0"})
	start := time.Now()
	waitDoc(t, sub, 3*time.Second, "downloading", func(d export.GatewayStatus) bool {
		return d.OTA != nil && d.OTA.State == "downloading" && d.OTA.Target == "v1.1.0"
	})
	t.Logf("an update's state reached the document in %s", time.Since(start).Round(time.Millisecond))
	n = len(sub.Messages())
	ota.Store(&export.OTAStatus{State: "downloading", Status: "downloading v1.1.0 40%", Target: "v1.1.0"})
	time.Sleep(2500 * time.Millisecond)
	if more := sub.Messages()[n:]; len(more) > 0 {
		t.Errorf("a document for the download's progress alone: %s", more[0].Payload)
	}

	// Health changes (a device goes offline): published at once, reasons
	// with it.
	switchModes.Store("fd-1", "error")
	d = waitDoc(t, sub, 10*time.Second, "degraded", func(d export.GatewayStatus) bool {
		return d.Health != nil && d.Health.Status == "degraded" && d.Devices["offline"] == 1
	})
	if len(d.Health.Reasons) == 0 || !strings.Contains(strings.Join(d.Health.Reasons, ";"), "device fd-1 offline") {
		t.Errorf("reasons: %v", d.Health.Reasons)
	}
	switchModes.Store("fd-1", "ok")

	// The will: the broker publishes it when the export's connection dies.
	var will export.GatewayStatus
	if err := json.Unmarshal(tg.g.devices.will().Payload, &will); err != nil {
		t.Fatal(err)
	}
	if will.State != "offline" || will.ID != "gw-test" || will.Labels["site"] != "berlin" || will.Boot != bootID {
		t.Errorf("will: %+v", will)
	}

	// A clean stop: offline, with the labels and the update agent.
	tg.stop(t)
	d = waitDoc(t, sub, 10*time.Second, "offline", func(d export.GatewayStatus) bool { return d.State == "offline" })
	if d.Reason != "stopped" || d.Labels["site"] != "berlin" || d.OTA == nil || d.OTA.State != "downloading" {
		t.Errorf("offline document: %+v", d)
	}
}

// TestGatewayDocumentHeartbeat: with nothing changing, the document is
// published again every gateway.status_interval, with a newer time.
func TestGatewayDocumentHeartbeat(t *testing.T) {
	switchModes.Store("fh-1", "ok")
	doc := strings.Replace(withAppUser(fmt.Sprintf(envelope, `{"name":"fs","type":"test-switch","devices":[{"name":"fh-1","interval":"100ms"}]}`)),
		`"gateway": {"id": "gw-test", "state_dir": "STATE"}`, `"gateway": {"id": "gw-test", "state_dir": "STATE", "status_interval": "1s"}`, 1)
	tg := startGateway(t, doc)
	sub := gatewayDocs(t, tg, "t-beat")
	first := waitDoc(t, sub, 30*time.Second, "online", func(d export.GatewayStatus) bool { return d.State == "online" && d.Devices["online"] == 1 })
	seen := map[string]bool{first.At: true}
	waitDoc(t, sub, 10*time.Second, "three heartbeats", func(d export.GatewayStatus) bool {
		seen[d.At] = true
		return len(seen) >= 4 && d.Uptime >= 3
	})
}
