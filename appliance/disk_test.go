package appliance

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/appliance/health"
	_ "github.com/osgate/osgate/drivers/http"
	_ "github.com/osgate/osgate/drivers/mqtt"
	"github.com/osgate/osgate/internal/testpeer"
)

// The tests below run the whole gateway with its state dir on a small
// tmpfs that they fill for real, so the export spool's writes fail with
// ENOSPC as on a full SD card, then make room again. The field side is
// real too: HTTP clients posting to the ingest connector, and a field
// Mosquitto the MQTT connector subscribes to.

const diskEnvelope = `{
  "gateway": {"id": "gw-test", "state_dir": %q, "disk_warn_bytes": %d},
  "broker": {"listen": "BROKER"},
  "rpc": {"listen": "RPC", "api_keys": [{"name": "test", "sha256": "KEYHASH"}]},
  "connectors": [%s]
}`

// startDiskGateway runs a gateway on a 16 MiB state dir with a warning
// threshold of 4 MiB, logging into logs (printed if the test fails).
func startDiskGateway(t *testing.T, connector string) (*testGateway, *testpeer.SmallFS, *testpeer.Buffer) {
	t.Helper()
	fs := testpeer.MountSmallFS(t, 16<<20)
	logs := &testpeer.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tg := startGatewayLog(t, fmt.Sprintf(diskEnvelope, fs.Dir, 4<<20, connector), log)
	testpeer.WaitFor(t, 30*time.Second, "health ok", func() bool { return tg.g.health.Report().Status == health.OK })
	return tg, fs, logs
}

// seqKey keys exported messages by their "seq" value.
func seqKey(_ string, payload []byte) string {
	var p struct {
		Values map[string]any `json:"values"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return "?"
	}
	return fmt.Sprint(p.Values["seq"])
}

func seqs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// healthz is the gateway's /healthz: HTTP status and report.
func healthz(t *testing.T, tg *testGateway) (int, health.Report) {
	t.Helper()
	resp, err := http.Get("http://" + tg.g.rpcAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r health.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	return resp.StatusCode, r
}

func hasReason(r health.Report, prefix string) bool {
	for _, s := range r.Reasons {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestDiskFullHTTPIngest fills the state dir under HTTP ingest (and a
// poller): below the warning threshold health is degraded and says so;
// once full, clients get 507 with a clear message, the condition is logged
// once (rate-limited), health is degraded with the reason, and the
// poller's readings are counted as dropped; when room is made, posts are
// accepted again at once and everything a client was told to send again
// and did reaches the broker.
func TestDiskFullHTTPIngest(t *testing.T) {
	iaddr := testpeer.Addr(testpeer.FreePort(t))
	tg, fs, logs := startDiskGateway(t, fmt.Sprintf(`{"name": "ingest", "type": "http",
		"settings": {"ingest": {"listen": %q, "api_keys": [{"name": "t", "sha256": "KEYHASH"}]}},
		"devices": [{"name": "press-1", "interval": "5m"}]},
		{"name": "poll", "type": "test-counter", "devices": [{"name": "c-1", "interval": "100ms"}]}`, iaddr))
	testpeer.WaitTCP(t, iaddr, 30*time.Second)
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-disk-http", Filter: "telemetry/gw-test/press-1", Key: seqKey})

	type answer struct {
		status     int
		error      string
		retryAfter string
	}
	sent := 0 // posts 1..sent were accepted
	post := func() answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+iaddr+"/ingest/press-1", strings.NewReader(fmt.Sprintf(`{"seq": %d}`, sent+1)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusAccepted {
			sent++
		}
		return answer{resp.StatusCode, e.Error, resp.Header.Get("Retry-After")}
	}
	for range 5 {
		if a := post(); a.status != http.StatusAccepted {
			t.Fatalf("with room: %+v", a)
		}
	}

	// Below the warning threshold: degraded, saying so, still accepting.
	fs.Fill(3 << 20)
	testpeer.WaitFor(t, 30*time.Second, "the low-space warning", func() bool {
		r := tg.g.health.Report()
		return r.Status == health.Degraded && hasReason(r, "disk space low: ")
	})
	if free, warn := mustMetric(t, tg.rpcURL, "osgate_disk_free_bytes"), mustMetric(t, tg.rpcURL, "osgate_disk_warn_bytes"); free <= 0 || free >= 4<<20 || warn != 4<<20 {
		t.Errorf("metrics: osgate_disk_free_bytes %v, osgate_disk_warn_bytes %v; want free in (0, 4 MiB) and warn 4 MiB", free, warn)
	}
	if a := post(); a.status != http.StatusAccepted {
		t.Fatalf("low on space: %+v", a)
	}

	// Full. The spool's last page may still take a few messages.
	fs.Fill(0)
	var full answer
	for range 1000 {
		if full = post(); full.status != http.StatusAccepted {
			break
		}
	}
	const msg = "osgate's disk is full: the 1 readings were not all stored, send again later"
	if full.status != http.StatusInsufficientStorage || full.error != msg || full.retryAfter == "" {
		t.Fatalf("disk full: got %+v, want 507 %q with Retry-After", full, msg)
	}
	for range 20 {
		if a := post(); a.status != http.StatusInsufficientStorage {
			t.Fatalf("disk still full: %+v", a)
		}
	}
	status, r := healthz(t, tg)
	if status != http.StatusOK || r.Status != health.Degraded || !hasReason(r, "disk full: readings cannot be stored in "+fs.Dir) || r.Disk == nil || !r.Disk.Full {
		t.Errorf("/healthz while full: %d %+v", status, r)
	}
	if v := mustMetric(t, tg.rpcURL, "osgate_disk_full"); v != 1 {
		t.Errorf("osgate_disk_full = %v while full", v)
	}
	const dropped = `osgate_readings_dropped_total{connector="poll",reason="disk_full"}`
	testpeer.WaitFor(t, 10*time.Second, "the poller's readings counted as dropped", func() bool { return mustMetric(t, tg.rpcURL, dropped) > 0 })
	if n := strings.Count(logs.String(), "disk full: readings cannot be stored"); n != 1 {
		t.Errorf("%d log lines for 21 refused posts, want 1 (rate-limited)", n)
	}

	// Room again: accepted at once, health back to ok.
	fs.Empty()
	if a := post(); a.status != http.StatusAccepted {
		t.Fatalf("after making room: %+v", a)
	}
	testpeer.WaitFor(t, 5*time.Second, "health ok after making room", func() bool { return tg.g.health.Report().Status == health.OK })
	if !strings.Contains(logs.String(), "disk has room again") {
		t.Error("the end of the full disk is not logged")
	}
	if v := mustMetric(t, tg.rpcURL, "osgate_disk_full"); v != 0 {
		t.Errorf("osgate_disk_full = %v after making room", v)
	}
	if missing := sub.WaitKeys(seqs(1, sent), 60*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d accepted readings never reached the broker: %v", len(missing), sent, missing)
	}
	// The poller exports again.
	polled := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-disk-poll", Filter: "telemetry/gw-test/c-1", Key: seqKey})
	if !polled.WaitDistinct(3, 30*time.Second) {
		t.Fatal("the poller exports nothing after room was made")
	}
}

// TestDiskFullMQTTConnector fills the state dir while a field device
// publishes to a field Mosquitto: the connector stops taking messages
// (they wait, unacknowledged, at the field broker), health says why, and
// once room is made the field path resumes within seconds, not after a
// back-off grown for a failing broker, and nothing is lost.
func TestDiskFullMQTTConnector(t *testing.T) {
	field := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	tg, fs, logs := startDiskGateway(t, fmt.Sprintf(`{"name": "field", "type": "mqtt",
		"settings": {"brokers": [{"name": "plant", "url": %q, "tls": false}],
			"mappings": [{"topic": "plant/{device}", "channels": [{"each": ""}]}]},
		"devices": [{"name": "m-1", "interval": "1m"}]}`, field.URL()))
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-disk-mqtt", Filter: "telemetry/gw-test/m-1", Key: seqKey})

	// The field device: one QoS 1 message every 50 ms.
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(field.URL()).SetClientID("t-field-device"))
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("field device: connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	var mu sync.Mutex
	published := 0
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			tok := pub.Publish("plant/m-1", 1, false, fmt.Sprintf(`{"seq": %d}`, n))
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Errorf("field device: publish %d: %v", n, tok.Error())
				return
			}
			mu.Lock()
			published = n
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-stopped
	}()
	if !sub.WaitDistinct(10, 60*time.Second) {
		t.Fatal("the field path exports nothing")
	}

	// Full for 17 s: long enough for a back-off meant for failing brokers
	// (attempts 1, 3, 7, 15, 31 s after the first failure) to have grown
	// well past the moment room is made.
	fs.Fill(0)
	filled := time.Now()
	testpeer.WaitFor(t, 10*time.Second, "the full disk in health", func() bool {
		r := tg.g.health.Report()
		return r.Status == health.Degraded && hasReason(r, "disk full: ")
	})
	time.Sleep(time.Until(filled.Add(17 * time.Second)))
	if r := tg.g.health.Report(); r.Status != health.Degraded || !hasReason(r, "disk full: ") {
		t.Errorf("health while full: %+v", r)
	}
	if !strings.Contains(logs.String(), "disk full: readings cannot be stored") {
		t.Error("the full disk is not logged")
	}
	maxSeen := 0
	for _, m := range sub.Messages() {
		if n, err := strconv.Atoi(seqKey(m.Topic, m.Payload)); err == nil {
			maxSeen = max(maxSeen, n)
		}
	}
	mu.Lock()
	waiting := published - maxSeen
	mu.Unlock()
	if waiting < 100 {
		t.Fatalf("only %d messages waited while the disk was full: the test did not stop the field path", waiting)
	}

	// Room again: the field path resumes within seconds.
	fs.Empty()
	freed := time.Now()
	if missing := sub.WaitKeys([]string{strconv.Itoa(maxSeen + 1)}, 90*time.Second); len(missing) > 0 {
		t.Fatalf("the field path did not resume within 90 s after room was made")
	}
	t.Logf("the field path resumed %s after room was made", time.Since(freed).Round(10*time.Millisecond))
	if d := time.Since(freed); d > 5*time.Second {
		t.Errorf("the field path resumed %s after room was made, want within 5 s", d.Round(100*time.Millisecond))
	}

	// Nothing lost.
	close(stop)
	<-stopped
	mu.Lock()
	n := published
	mu.Unlock()
	if missing := sub.WaitKeys(seqs(1, n), 60*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d field messages never reached the broker: %v", len(missing), n, missing)
	}
	testpeer.WaitFor(t, 10*time.Second, "health ok after making room", func() bool { return tg.g.health.Report().Status == health.OK })
}

// TestDiskWarnAutomatic: without gateway.disk_warn_bytes the threshold is a
// tenth of the file system, at most 128 MiB, so the Pi image's small /perm
// (under 100 MiB) is not "low on space" from the first boot; a configured
// threshold is used as it is.
func TestDiskWarnAutomatic(t *testing.T) {
	for _, c := range []struct {
		configured     int64
		free, size     uint64
		wantWarn       uint64
		wantLowOnSpace bool
	}{
		{0, 40 << 20, 96 << 20, 96 << 20 / 10, false},     // the Pi's /perm, mostly free
		{0, 5 << 20, 96 << 20, 96 << 20 / 10, true},       // the same, nearly full
		{0, 1 << 30, 64 << 30, 128 << 20, false},          // a large disk: capped
		{0, 100 << 20, 64 << 30, 128 << 20, true},         // ... and below the cap
		{200 << 20, 150 << 20, 64 << 30, 200 << 20, true}, // configured
	} {
		h := health.New(time.Hour)
		h.Export(true, 0, 100)
		d := newDisk("/state", c.configured, h, slog.New(slog.DiscardHandler))
		d.statfs = func(string) (uint64, uint64, error) { return c.free, c.size, nil }
		d.measure(false)
		r := h.Report()
		if r.Disk == nil || r.Disk.WarnBytes != c.wantWarn {
			t.Errorf("%+v: disk report %+v, want warn %d", c, r.Disk, c.wantWarn)
			continue
		}
		if low := r.Status == health.Degraded; low != c.wantLowOnSpace {
			t.Errorf("%+v: status %s %v, want low on space %v", c, r.Status, r.Reasons, c.wantLowOnSpace)
		}
	}
}
