package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

// supervised is a gateway run by Supervise on a local file that the test
// rewrites (the config source polls it every 100 ms).
type supervised struct {
	file     string
	envelope string
	vars     *strings.Replacer
	broker   string
	rpc      *rpc.Client
}

func startSupervised(t *testing.T, connectors string) *supervised {
	t.Helper()
	return startSupervisedIn(t, supervisedEnvelope, connectors)
}

// startSupervisedIn is startSupervised with another envelope (%s: the
// connectors).
func startSupervisedIn(t *testing.T, envelope, connectors string) *supervised {
	t.Helper()
	bport, rport := testpeer.FreePort(t), testpeer.FreePort(t)
	dir := t.TempDir()
	s := &supervised{
		file:     filepath.Join(dir, "osgate.json"),
		envelope: envelope,
		vars:     strings.NewReplacer("STATE", dir, "BROKER", testpeer.Addr(bport), "RPC", testpeer.Addr(rport), "KEYHASH", apikey.Hash(testKey)),
		broker:   "tcp://" + testpeer.Addr(bport),
	}
	s.write(t, connectors)
	cfg, err := config.Load(s.file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := source.New(source.Options[*config.Config]{LocalPath: s.file, StateDir: cfg.Gateway.StateDir, Gateway: cfg.Gateway.ID,
		Validate: config.Parse, LocalPoll: 100 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, src, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && err != context.Canceled {
				t.Errorf("Supervise: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("Supervise did not return within 60 s")
		}
		src.Close()
	})
	testpeer.WaitTCP(t, testpeer.Addr(rport), 30*time.Second)
	s.rpc = rpc.NewClient("http://"+testpeer.Addr(rport), testKey, nil)
	t.Cleanup(s.rpc.Close)
	return s
}

const supervisedEnvelope = `{
  "gateway": {"id": "gw-test", "state_dir": "STATE", "config_grace": "1s"},
  "broker": {"listen": "BROKER"},
  "rpc": {"listen": "RPC", "api_keys": [{"name": "test", "sha256": "KEYHASH", "scope": "admin"}]},
  "connectors": [%s]
}`

// write replaces the local file atomically, as an operator's editor or a
// provisioning tool would.
func (s *supervised) write(t *testing.T, connectors string) {
	t.Helper()
	tmp := s.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.vars.Replace(fmt.Sprintf(s.envelope, connectors))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.file); err != nil {
		t.Fatal(err)
	}
}

func (s *supervised) connectors(t *testing.T) map[string]connectorInfo {
	t.Helper()
	var list []connectorInfo
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.rpc.Call(ctx, "connectors.list", nil, &list); err != nil {
		t.Fatalf("connectors.list: %v", err)
	}
	m := map[string]connectorInfo{}
	for _, c := range list {
		m[c.Name] = c
	}
	return m
}

func (s *supervised) waitConnectors(t *testing.T, what string, cond func(map[string]connectorInfo) bool) map[string]connectorInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := s.connectors(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConfigChangeRestartsOnlyWhatChanged changes one connector of two in
// the config file: that one restarts, and the other keeps polling without
// a gap in its sequence of readings on the broker.
func TestConfigChangeRestartsOnlyWhatChanged(t *testing.T) {
	steady := `{"name":"steady","type":"test-counter","devices":[{"name":"s-1","interval":"50ms","channels":[{"name":"seq"}]}]}`
	s := startSupervised(t, steady+`,{"name":"other","type":"test-counter","devices":[{"name":"o-1","interval":"1s"}]}`)
	sub := testpeer.Subscribe(t, s.broker, testpeer.SubscriberOptions{ClientID: "t-steady", Filter: "telemetry/gw-test/s-1"})
	before := s.waitConnectors(t, "both connectors", func(m map[string]connectorInfo) bool { return len(m) == 2 })
	if !sub.WaitDistinct(5, 60*time.Second) {
		t.Fatal("steady connector exports nothing")
	}
	s.write(t, steady+`,{"name":"other","type":"test-counter","devices":[{"name":"o-1","interval":"2s"}]},{"name":"added","type":"test-counter","devices":[{"name":"a-1","interval":"1s"}]}`)
	after := s.waitConnectors(t, "the change applied", func(m map[string]connectorInfo) bool { return len(m) == 3 })
	if after["steady"].Started != before["steady"].Started {
		t.Errorf("unchanged connector restarted: %v -> %v", before["steady"].Started, after["steady"].Started)
	}
	if after["other"].Started == before["other"].Started {
		t.Errorf("changed connector not restarted")
	}
	n := len(sub.Messages())
	if !sub.WaitDistinct(n+10, 60*time.Second) {
		t.Fatal("steady connector stopped exporting after the change")
	}
	// No gap: the sequence numbers received are exactly first..max (the
	// subscriber may have subscribed after the first readings went out).
	seen := map[int]bool{}
	minSeq, maxSeq := 0, 0
	for _, m := range sub.Messages() {
		var p payload
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		seq := int(p.Values["seq"].(float64))
		seen[seq] = true
		maxSeq = max(maxSeq, seq)
		if minSeq == 0 || seq < minSeq {
			minSeq = seq
		}
	}
	for i := minSeq; i <= maxSeq; i++ {
		if !seen[i] {
			t.Errorf("gap in the steady connector's readings: seq %d missing (max %d)", i, maxSeq)
		}
	}
}

// TestUnhealthyConfigRolledBack applies a config whose only connector
// fails: after config_grace unhealthy, the previous config runs again and
// the bad version is reported and not retried.
func TestUnhealthyConfigRolledBack(t *testing.T) {
	good := `{"name":"good","type":"test-counter","devices":[{"name":"g-1","interval":"100ms"}]}`
	s := startSupervised(t, good)
	s.waitConnectors(t, "the good connector", func(m map[string]connectorInfo) bool { _, ok := m["good"]; return ok })
	s.write(t, `{"name":"hang-only","type":"test-counter","devices":[{"name":"h-1","interval":"100ms","timeout":"50ms"}]}`)
	s.waitConnectors(t, "the bad config applied", func(m map[string]connectorInfo) bool { _, ok := m["hang-only"]; return ok })
	s.waitConnectors(t, "the rollback", func(m map[string]connectorInfo) bool { _, ok := m["good"]; return ok && len(m) == 1 })
	var st source.Status
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.rpc.Call(ctx, "gateway.config.status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.BadVersions) != 1 || !strings.Contains(st.BadVersions[0].Reason, "every connector is failing") {
		t.Fatalf("bad versions %+v", st.BadVersions)
	}
	// The bad file is still on disk: it must not be applied again.
	time.Sleep(time.Second)
	if m := s.connectors(t); m["good"].Name == "" {
		t.Fatalf("bad config re-applied: %+v", m)
	}
}

// TestInvalidConfigRefused: a file that does not validate is refused with
// its errors reported, and the running configuration stays.
func TestInvalidConfigRefused(t *testing.T) {
	good := `{"name":"good","type":"test-counter","devices":[{"name":"g-1","interval":"100ms"}]}`
	s := startSupervised(t, good)
	before := s.waitConnectors(t, "the good connector", func(m map[string]connectorInfo) bool { _, ok := m["good"]; return ok })
	s.write(t, `{"name":"broken","type":"test-counter","devices":[{"name":"b-1","interval":"fast"}]}`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st source.Status
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.rpc.Call(ctx, "gateway.config.status", nil, &st)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(st.LastError, "connectors[0].devices[0].interval") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invalid config not reported: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := s.connectors(t); after["good"].Started != before["good"].Started || len(after) != 1 {
		t.Fatalf("running config changed: %+v", after)
	}
}

// TestSupervisorExtras: methods added to the Supervisor (the OTA agent's)
// are served by the gateway it runs, and Health reads that gateway's model.
func TestSupervisorExtras(t *testing.T) {
	bport, rport := testpeer.FreePort(t), testpeer.FreePort(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{"gateway":{"id":"gw-sv","state_dir":%q},"broker":{"listen":%q},
		"rpc":{"listen":%q,"api_keys":[{"name":"t","sha256":%q,"scope":"admin"}]},
		"connectors":[{"name":"sys","type":"system","devices":[{"name":"gateway","interval":"1s"}]}]}`,
		t.TempDir(), testpeer.Addr(bport), testpeer.Addr(rport), apikey.Hash(testKey))))
	if err != nil {
		t.Fatal(err)
	}
	sv := NewSupervisor(StaticSource(cfg, "test"), slog.New(slog.DiscardHandler))
	if r := sv.Health(); r.Status != "degraded" {
		t.Fatalf("health before a gateway runs: %+v", r)
	}
	sv.AddMethods(map[string]rpc.Method{
		"ota.status": {Scope: scope.Read, Handler: func(context.Context, json.RawMessage) (any, error) { return "idle", nil }},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testpeer.WaitTCP(t, testpeer.Addr(rport), 30*time.Second)
	c := rpc.NewClient("http://"+testpeer.Addr(rport), testKey, nil)
	defer c.Close()
	var st string
	if err := c.Call(context.Background(), "ota.status", nil, &st); err != nil || st != "idle" {
		t.Fatalf("ota.status: %q %v", st, err)
	}
	testpeer.WaitFor(t, 30*time.Second, "the running gateway's health", func() bool {
		r := sv.Health()
		return r.Status == "ok" && len(r.Connectors) == 1
	})
}

// version is the version (12 hex digits, as the status document has it)
// of the file write makes for connectors.
func (s *supervised) version(connectors string) string {
	sum := sha256.Sum256([]byte(s.vars.Replace(fmt.Sprintf(s.envelope, connectors))))
	return hex.EncodeToString(sum[:])[:12]
}

// TestConfigTrialInStatusDocument: the gateway's status document says
// when a new configuration is on trial and, once the supervisor rolled
// one back, which one and why: a good one is on trial, then confirmed
// (trial gone, nothing rejected); a bad one is on trial, then rolled
// back, and the document names it as rejected while the good one runs
// again, not on trial.
func TestConfigTrialInStatusDocument(t *testing.T) {
	first := `{"name":"good","type":"test-counter","devices":[{"name":"g-1","interval":"100ms"}]}`
	s := startSupervisedIn(t, withAppUser(supervisedEnvelope), first)
	sub := testpeer.Subscribe(t, s.broker, testpeer.SubscriberOptions{ClientID: "t-trial", Filter: "status/gw-test", Username: appUser, Password: appPass})
	waitDoc(t, sub, 30*time.Second, "online on the first configuration, not on trial", func(d export.GatewayStatus) bool {
		return d.State == "online" && d.Config != nil && d.Config.Version == s.version(first) && !d.Config.Trial
	})

	good := `{"name":"good","type":"test-counter","devices":[{"name":"g-1","interval":"200ms"}]}`
	s.write(t, good)
	waitDoc(t, sub, 10*time.Second, "the good change on trial", func(d export.GatewayStatus) bool {
		return d.Config != nil && d.Config.Version == s.version(good) && d.Config.Trial
	})
	d := waitDoc(t, sub, 10*time.Second, "the good change confirmed", func(d export.GatewayStatus) bool {
		return d.Config != nil && d.Config.Version == s.version(good) && !d.Config.Trial
	})
	if d.Config.Rejected != nil {
		t.Errorf("a confirmed change, and the document names a rejected one: %+v", d.Config.Rejected)
	}

	bad := `{"name":"hang-only","type":"test-counter","devices":[{"name":"h-1","interval":"100ms","timeout":"50ms"}]}`
	s.write(t, bad)
	waitDoc(t, sub, 10*time.Second, "the bad change on trial", func(d export.GatewayStatus) bool {
		return d.Config != nil && d.Config.Version == s.version(bad) && d.Config.Trial
	})
	d = waitDoc(t, sub, 30*time.Second, "the bad change rejected", func(d export.GatewayStatus) bool {
		return d.Config != nil && d.Config.Rejected != nil
	})
	r := d.Config.Rejected
	if d.Config.Version != s.version(good) || d.Config.Trial || r.Version != s.version(bad) ||
		!strings.Contains(r.Reason, "every connector is failing") || r.At == "" {
		t.Errorf("after the rollback: %+v, rejected %+v; want %s running, not on trial, %s rejected for its failing connectors",
			d.Config, r, s.version(good), s.version(bad))
	}
}
