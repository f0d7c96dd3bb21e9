package appliance

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/testpeer"
)

// fleetGateway is a gateway run by a Supervisor on configurations pulled
// from a fleet: nginx serving signed documents, as in production. The
// local file is only the bootstrap (identity, state dir, where to pull).
type fleetGateway struct {
	root    string // nginx's document root
	key     ed25519.PrivateKey
	mtime   time.Time // advanced at every publish so nginx's ETag changes
	nginx   *testpeer.Nginx
	vars    *strings.Replacer
	broker  string
	src     *source.Source[*config.Config]
	rpc     *rpc.Client
	stopped chan error // Supervise's return
}

// fleetDoc is a gateway document; %s are the connectors.
const fleetDoc = `{
  "gateway": {"id": "gw-fleet", "state_dir": "STATE", "config_grace": "1s"},
  "broker": {"listen": "BROKER"},
  "export": {"queue_limit": %d},
  "rpc": {"listen": "%s", "api_keys": [{"name": "test", "sha256": "KEYHASH"}]},
  "connectors": [%s]
}`

func startFleetGateway(t *testing.T, first []byte) *fleetGateway {
	t.Helper()
	pub, priv, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fleetGateway{root: t.TempDir(), mtime: time.Now().Add(-time.Hour).Truncate(time.Second)}
	if f.key, err = sign.ParsePrivateKey(priv); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(f.root, "gateways"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.nginx = testpeer.StartNginx(t, testpeer.NginxOptions{Root: f.root, LogFormat: "$request_method $uri $status"})
	state, bport, rport := t.TempDir(), testpeer.FreePort(t), testpeer.FreePort(t)
	f.vars = strings.NewReplacer("STATE", state, "BROKER", testpeer.Addr(bport), "RPC", testpeer.Addr(rport), "KEYHASH", apikey.Hash(testKey))
	f.broker = "tcp://" + testpeer.Addr(bport)
	f.publish(t, first)

	// The bootstrap: the first document (the configuration of last
	// resort) with the remote block.
	var boot map[string]any
	if err := json.Unmarshal(f.expand(first), &boot); err != nil {
		t.Fatal(err)
	}
	boot["remote"] = map[string]any{
		"url":        "http://" + f.nginx.Addr() + "/gateways/{gateway}.json",
		"interval":   "1s",
		"timeout":    "10s",
		"public_key": pub,
	}
	local := filepath.Join(t.TempDir(), "osgate.json")
	b, _ := json.Marshal(boot)
	if err := os.WriteFile(local, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(local)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f.src, err = source.New(source.Options[*config.Config]{LocalPath: local, StateDir: cfg.Gateway.StateDir, Gateway: cfg.Gateway.ID,
		Remote: cfg.Remote, Validate: config.Parse, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stopped = make(chan error, 1)
	go func() { f.stopped <- Supervise(ctx, f.src, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.stopped:
			if err != nil && err != context.Canceled {
				t.Errorf("Supervise: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("Supervise did not return within 60 s")
		}
		f.src.Close()
	})
	f.rpc = rpc.NewClient("http://"+testpeer.Addr(rport), testKey, nil)
	t.Cleanup(f.rpc.Close)
	return f
}

func (f *fleetGateway) expand(doc []byte) []byte { return []byte(f.vars.Replace(string(doc))) }

// publish signs doc and serves it, signature first (the publishing order
// config/source/README.md asks for).
func (f *fleetGateway) publish(t *testing.T, doc []byte) (version string) {
	t.Helper()
	doc = f.expand(doc)
	f.mtime = f.mtime.Add(time.Second)
	path := filepath.Join(f.root, "gateways", "gw-fleet.json")
	for _, w := range []struct {
		path string
		data []byte
	}{{path + ".sig", sign.Sign(f.key, doc)}, {path, doc}} {
		tmp := w.path + ".tmp"
		if err := os.WriteFile(tmp, w.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, w.path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := config.Parse(doc); err != nil {
		t.Fatalf("published document does not validate: %v", err)
	}
	sum := sha256.Sum256(doc) // a version is the document's SHA-256
	return hex.EncodeToString(sum[:])
}

// waitFor polls cond, failing at once if Supervise returned: a gateway
// that exits is the failure these tests look for.
func (f *fleetGateway) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case err := <-f.stopped:
			f.stopped <- err // for the cleanup
			t.Fatalf("waiting for %s: Supervise returned: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (config status %+v)", what, f.src.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectors lists the running connectors over RPC; nil while the RPC
// service does not answer (the gateway is restarting).
func (f *fleetGateway) connectors() map[string]connectorInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list []connectorInfo
	if err := f.rpc.Call(ctx, "connectors.list", nil, &list); err != nil {
		return nil
	}
	m := map[string]connectorInfo{}
	for _, c := range list {
		m[c.Name] = c
	}
	return m
}

func (f *fleetGateway) runs(t *testing.T, what string, names ...string) {
	t.Helper()
	f.waitFor(t, what, func() bool {
		m := f.connectors()
		if m == nil || len(m) != len(names) {
			return false
		}
		for _, n := range names {
			if _, ok := m[n]; !ok {
				return false
			}
		}
		return true
	})
}

// checkRolledBack: the gateway runs the good version again, exports, and
// the bad one is listed as bad and refused at every later pull.
func (f *fleetGateway) checkRolledBack(t *testing.T, good, bad, reason string) {
	t.Helper()
	f.runs(t, "the previous configuration running again", "good")
	st := f.src.Status()
	if st.Version != good {
		t.Errorf("config status names version %s as running, want the previous %s", short(st.Version), short(good))
	}
	if len(st.BadVersions) != 1 || st.BadVersions[0].Version != bad || !strings.Contains(st.BadVersions[0].Reason, reason) {
		t.Errorf("bad versions %+v, want %s with a reason containing %q", st.BadVersions, short(bad), reason)
	}
	sub := testpeer.Subscribe(t, f.broker, testpeer.SubscriberOptions{ClientID: "t-rollback", Filter: "telemetry/gw-fleet/g-1"})
	if !sub.WaitDistinct(3, 60*time.Second) {
		t.Fatal("the previous configuration exports nothing after the rollback")
	}
	// The fleet still serves the bad document: later pulls refuse it and
	// the gateway stays on the good one.
	n := len(f.nginx.AccessLog("/gateways/gw-fleet.json "))
	f.waitFor(t, "two more pulls", func() bool { return len(f.nginx.AccessLog("/gateways/gw-fleet.json ")) >= n+2 })
	f.waitFor(t, "the refusal in the status", func() bool { return f.src.Status().LastOutcome == "refused" })
	if st := f.src.Status(); st.Version != good || !strings.Contains(st.LastError, "marked bad") {
		t.Errorf("status after later pulls: %+v", st)
	}
	if m := f.connectors(); m == nil || m["good"].Name == "" || len(m) != 1 {
		t.Errorf("connectors after later pulls: %+v", m)
	}
}

const goodConnector = `{"name":"good","type":"test-counter","devices":[{"name":"g-1","interval":"100ms"}]}`

// TestRollbackOfAChangeThatFailsToStart publishes a change of the RPC
// listener to a port something else holds: the new gateway cannot start,
// so the previous configuration runs again and the new one is marked bad;
// the process does not exit.
func TestRollbackOfAChangeThatFailsToStart(t *testing.T) {
	f := startFleetGateway(t, fmt.Appendf(nil, fleetDoc, 1000, "RPC", goodConnector))
	f.runs(t, "the first configuration", "good")
	good := f.src.Status().Version

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bad := f.publish(t, fmt.Appendf(nil, fleetDoc, 1000, taken.Addr().String(), goodConnector))
	f.waitFor(t, "the new version to be tried and marked bad", func() bool { return len(f.src.Status().BadVersions) > 0 })
	f.checkRolledBack(t, good, bad, "rpc: listen on "+taken.Addr().String())
}

// TestRollbackOfAChangeLeftUnhealthy publishes a change of the export
// settings (a restart) whose only connector fails: unhealthy past
// config_grace, it is rolled back to the previous configuration, which
// runs again.
func TestRollbackOfAChangeLeftUnhealthy(t *testing.T) {
	f := startFleetGateway(t, fmt.Appendf(nil, fleetDoc, 1000, "RPC", goodConnector))
	f.runs(t, "the first configuration", "good")
	good := f.src.Status().Version

	bad := f.publish(t, fmt.Appendf(nil, fleetDoc, 2000,
		"RPC", `{"name":"hang-only","type":"test-counter","devices":[{"name":"h-1","interval":"100ms","timeout":"50ms"}]}`))
	f.runs(t, "the new configuration", "hang-only")
	f.checkRolledBack(t, good, bad, "every connector is failing")
}
