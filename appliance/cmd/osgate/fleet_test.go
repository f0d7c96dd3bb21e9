package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/fleet"
	"github.com/osgate/osgate/internal/testpeer"
)

// simGateway is one gateway of the fleet simulation, run in this process
// with its own state dir and its own managed Mosquitto bridged to the
// cloud broker: the same code and the same brokers as `osgate run`.
type simGateway struct {
	id     string
	cancel context.CancelFunc
	done   chan error
}

func (g *simGateway) stop(t *testing.T) {
	t.Helper()
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("gateway %s: %v", g.id, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("gateway %s did not stop within 60 s", g.id)
	}
}

// startSimGateway writes the bootstrap file of gateway id (its labels, a
// managed broker on a free port bridged over TLS with a password to
// cloud, cloud RPC with the operator key pub) and runs it until the test
// ends or stop.
func startSimGateway(t *testing.T, cloud *apptest.Cloud, id string, labels map[string]string) *simGateway {
	t.Helper()
	dir := t.TempDir()
	lj, _ := json.Marshal(labels)
	doc := fmt.Sprintf(`{"gateway": {"id": %q, "state_dir": %q, "labels": %s},
		"broker": {"listen": %q, "bridge": %s},
		"rpc": {"listen": "off", "operator_keys": %s},
		"connectors": []}`, id, filepath.Join(dir, "state"), lj, testpeer.Addr(testpeer.FreePort(t)), cloud.Bridge("5s"), cloud.OperatorKeys())
	file := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("gw", id))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &simGateway{id: id, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- gw.Run(ctx) }()
	t.Cleanup(func() { g.stop(t) })
	return g
}

// fleetRow is a line of `fleet ls -json`.
type fleetRow struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Seen   string `json:"seen"`
	Status struct {
		Version string            `json:"version"`
		Labels  map[string]string `json:"labels"`
		Health  *struct {
			Status  string   `json:"status"`
			Reasons []string `json:"reasons"`
		} `json:"health"`
	} `json:"status"`
}

func fleetLsJSON(t *testing.T, file string, selector ...string) []fleetRow {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"fleet", "-f", file, "ls", "-json"}, selector...)...)
	if code != 0 {
		t.Fatalf("fleet ls -json %v: exit %d: %s", selector, code, errOut)
	}
	var rows []fleetRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("fleet ls -json: %v\n%s", err, out)
	}
	return rows
}

func ids(rows []fleetRow) string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// TestFleetSimulation: four gateways, each with its own managed broker
// bridged to one cloud Mosquitto (TLS, passwords, the operator's ACL of
// docs/fleet.md); the operator's
// `osgate fleet` reaches them through the cloud broker only. `fleet ls`
// sees all four with their version, health and labels and filters on
// them; `fleet rpc` to all gets four signed answers; an unknown method is
// an error per gateway; a stopped gateway is offline, not asked, or
// (-offline) silent within its timeout; every outcome other than ok
// makes the exit code 1.
func TestFleetSimulation(t *testing.T) {
	t.Setenv("OSGATE_FLEET", "")
	// The cloud broker holds the fleet user to docs/fleet.md's ACL.
	cloud := apptest.StartCloud(t, apptest.CloudOptions{})
	fleetFile := cloud.FleetFile

	labels := map[string]map[string]string{
		"gw-1": {"site": "berlin", "hw": "pi4"},
		"gw-2": {"site": "berlin", "hw": "pi5"},
		"gw-3": {"site": "hamburg", "hw": "pi4"},
		"gw-4": {"site": "hamburg", "hw": "pi4", "customer": "acme"},
	}
	gws := map[string]*simGateway{}
	start := time.Now()
	for _, id := range []string{"gw-1", "gw-2", "gw-3", "gw-4"} {
		gws[id] = startSimGateway(t, cloud, id, labels[id])
	}

	// fleet ls sees all four, online, with what their documents say
	// (health is degraded for a moment at the start, while the bridge
	// connects).
	var rows []fleetRow
	testpeer.WaitFor(t, 90*time.Second, "fleet ls to show four gateways online and ok", func() bool {
		rows = fleetLsJSON(t, fleetFile)
		ok := 0
		for _, r := range rows {
			if r.State == "online" && r.Status.Health != nil && r.Status.Health.Status == "ok" {
				ok++
			}
		}
		if ok != 4 {
			for _, r := range rows {
				if r.Status.Health != nil {
					t.Logf("fleet ls: %s %s %s %v", r.ID, r.State, r.Status.Health.Status, r.Status.Health.Reasons)
				}
			}
		}
		return ok == 4
	})
	t.Logf("fleet ls saw the four gateways online and ok %s after they started", time.Since(start).Round(time.Millisecond))
	for _, r := range rows {
		switch {
		case r.Status.Version != appliance.Version:
			t.Errorf("%s: version %q, want %q", r.ID, r.Status.Version, appliance.Version)
		case r.Status.Health == nil || r.Status.Health.Status != "ok":
			t.Errorf("%s: health %+v", r.ID, r.Status.Health)
		case fmt.Sprint(r.Status.Labels) != fmt.Sprint(labels[r.ID]):
			t.Errorf("%s: labels %v, want %v", r.ID, r.Status.Labels, labels[r.ID])
		case r.Seen == "":
			t.Errorf("%s: no last-seen time", r.ID)
		}
	}
	for _, c := range []struct {
		selector []string
		want     string
	}{
		{[]string{"site=berlin"}, "gw-1,gw-2"},
		{[]string{"site=hamburg", "hw=pi4"}, "gw-3,gw-4"},
		{[]string{"hw!=pi4"}, "gw-2"},
		{[]string{"customer=acme"}, "gw-4"},
		{[]string{"customer!=acme"}, "gw-1,gw-2,gw-3"},
		{[]string{"gw-1,gw-3"}, "gw-1,gw-3"},
		{[]string{"gw-[12]"}, "gw-1,gw-2"},
		{[]string{"version=" + appliance.Version}, "gw-1,gw-2,gw-3,gw-4"},
		{[]string{"version=v0.0.0-nope"}, ""},
		{[]string{"health=ok"}, "gw-1,gw-2,gw-3,gw-4"},
		{[]string{"health!=ok"}, ""},
		{[]string{"seen<10m"}, "gw-1,gw-2,gw-3,gw-4"},
		{[]string{"seen>1h"}, ""},
		{[]string{"all"}, "gw-1,gw-2,gw-3,gw-4"},
	} {
		if got := ids(fleetLsJSON(t, fleetFile, c.selector...)); got != c.want {
			t.Errorf("fleet ls %v: %q, want %q", c.selector, got, c.want)
		}
	}
	code, table, errOut := runCLI("fleet", "-f", fleetFile, "ls", "site=berlin")
	if code != 0 || !strings.Contains(table, "GATEWAY") || !strings.Contains(table, "hw=pi5,site=berlin") ||
		!strings.Contains(table, "2 gateways: 2 online, 0 offline; versions: "+appliance.Version+" (2); health of the online: ok (2)") {
		t.Errorf("fleet ls site=berlin: exit %d\n%s%s", code, table, errOut)
	}

	// fleet rpc to all: the responders subscribe through the bridges in
	// their own time, so ask until all four answer, then check a round.
	testpeer.WaitFor(t, 90*time.Second, "all four gateways to answer fleet rpc", func() bool {
		code, _, _ := runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "all", "-timeout", "3s", "gateway.status")
		return code == 0
	})
	code, answers, errOut := runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "all", "-timeout", "5s", "gateway.status")
	if code != 0 || !strings.Contains(answers, "4 asked: 4 ok, 0 errors, 0 silent") {
		t.Fatalf("fleet rpc to all: exit %d\n%s%s", code, answers, errOut)
	}
	for id := range labels {
		if !strings.Contains(answers, id+"  ok") {
			t.Errorf("fleet rpc: no ok line for %s:\n%s", id, answers)
		}
	}
	t.Logf("fleet rpc gateway.status to four gateways:\n%s", answers)

	// JSON, to a label selector: every answer is its gateway's own.
	code, js, errOut := runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "site=berlin", "-json", "gateway.status")
	var ans []fleet.Answer
	if code != 0 || json.Unmarshal([]byte(js), &ans) != nil || len(ans) != 2 {
		t.Fatalf("fleet rpc -json to site=berlin: exit %d\n%s%s", code, js, errOut)
	}
	for _, a := range ans {
		if a.Outcome != "ok" || !strings.Contains(string(a.Result), `"`+a.Gateway+`"`) {
			t.Errorf("answer of %s does not name it: %s", a.Gateway, a.Result)
		}
	}

	// An unknown method: the gateway's JSON-RPC error, exit 1.
	code, answers, errOut = runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "gw-1", "no.such.method")
	if code != 1 || !strings.Contains(answers, "1 asked: 0 ok, 1 errors, 0 silent") || !strings.Contains(answers, "-32601") ||
		!strings.Contains(errOut, "1 of 1 gateways did not answer ok") {
		t.Errorf("fleet rpc no.such.method: exit %d\n%s%s", code, answers, errOut)
	}

	// gw-4 stops: offline in fleet ls, not asked by fleet rpc; with
	// -offline it is asked and silent after its timeout.
	gws["gw-4"].stop(t)
	testpeer.WaitFor(t, 30*time.Second, "fleet ls to show gw-4 offline", func() bool {
		rows := fleetLsJSON(t, fleetFile, "state=offline")
		return ids(rows) == "gw-4"
	})
	code, answers, errOut = runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "site=hamburg", "gateway.status")
	if code != 0 || !strings.Contains(answers, "1 asked: 1 ok, 0 errors, 0 silent") || !strings.Contains(answers, "1 offline, not asked (gw-4)") {
		t.Errorf("fleet rpc to site=hamburg with gw-4 stopped: exit %d\n%s%s", code, answers, errOut)
	}
	asked := time.Now()
	code, answers, errOut = runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "site=hamburg", "-offline", "-timeout", "2s", "gateway.status")
	took := time.Since(asked)
	if code != 1 || !strings.Contains(answers, "2 asked: 1 ok, 0 errors, 1 silent (gw-4)") {
		t.Errorf("fleet rpc -offline to site=hamburg: exit %d\n%s%s", code, answers, errOut)
	}
	if took > 15*time.Second {
		t.Errorf("fleet rpc with a 2s timeout took %s", took)
	}

	// No gateway selected: a clear error.
	code, _, errOut = runCLI("fleet", "-f", fleetFile, "rpc", "-gateways", "site=paris", "gateway.status")
	if code != 1 || !strings.Contains(errOut, `no online gateway matches "site=paris"`) {
		t.Errorf("fleet rpc to nobody: exit %d: %s", code, errOut)
	}
}

// TestFleetRefusesWrongCredentials: a wrong broker password says what to
// check; the password appears nowhere in the output.
func TestFleetRefusesWrongCredentials(t *testing.T) {
	t.Setenv("OSGATE_FLEET", "")
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true, Users: map[string]string{"operator": "op-secret"}})
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.json")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`{"broker": %q, "ca_file": %q, "username": "operator", "password": "wrong-Pa55"}`,
		cloud.URL(), cloud.CAFile())), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("fleet", "-f", file, "ls")
	if code != 1 || !strings.Contains(errOut, "connect to the cloud broker") || !strings.Contains(errOut, "check broker, username, password and ca_file") {
		t.Errorf("fleet ls with a wrong password: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "wrong-Pa55") {
		t.Error("the password appears in the output")
	}
	// A plain broker URL without "tls": false is refused before connecting.
	if err := os.WriteFile(file, []byte(`{"broker": "tcp://127.0.0.1:1", "username": "operator", "password": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("fleet", "-f", file, "ls"); code != 1 || !strings.Contains(errOut, `is not encrypted`) {
		t.Errorf("fleet ls to a plain broker: exit %d: %s", code, errOut)
	}
}
