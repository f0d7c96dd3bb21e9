//go:build testhook

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/fleet"
	"github.com/osgate/osgate/internal/testpeer"
	"github.com/osgate/osgate/ota"
)

// procGateway is a gateway of the rollout simulation: `osgate run` as a
// process on a simulated device (ota.SimDevice), restarted whenever it
// exits, as gokrazy restarts a service and boots a rebooted device.
type procGateway struct {
	*apptest.Process
	id, dir string
	// args follow `run -c DIR/osgate.json`; env is added to the test's.
	args, env []string
}

func (g *procGateway) device() string { return filepath.Join(g.dir, "device") }

func startProcGateway(t *testing.T, cloud *apptest.Cloud, id, otaURL, releasePub string) *procGateway {
	t.Helper()
	g := newProcGateway(t, cloud, id, map[string]string{"ring": "test"}, "")
	// The device is made with v1.0.0 in its root, as if flashed with it.
	if _, err := ota.OpenSimDevice(g.device(), "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	otaDoc := fmt.Sprintf(`{"url": %q, "public_key": %q, "channel": "stable", "interval": "1s",
		"confirm_after": "2s", "confirm_timeout": "90s", "tls": false}`, otaURL, releasePub)
	if err := os.WriteFile(filepath.Join(g.dir, "ota.json"), []byte(otaDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	g.args = []string{"-ota", filepath.Join(g.dir, "ota.json")}
	g.env = []string{SimDeviceEnv + "=" + g.device()}
	g.start(t)
	return g
}

// newProcGateway writes the bootstrap file of gateway id: its labels, a
// managed broker on a free port (also $OSGATE_BROKER_LISTEN, the default
// of pulled documents that leave broker.listen out) bridged over TLS with
// a password to cloud, and remote, a block for the configuration's
// source ("" for none). start runs it.
func newProcGateway(t *testing.T, cloud *apptest.Cloud, id string, labels map[string]string, remote string) *procGateway {
	t.Helper()
	g := &procGateway{id: id, dir: t.TempDir()}
	lj, _ := json.Marshal(labels)
	listen := testpeer.Addr(testpeer.FreePort(t))
	if remote != "" {
		remote = `, "remote": ` + remote
	}
	doc := fmt.Sprintf(`{"gateway": {"id": %q, "state_dir": %q, "labels": %s},
		"broker": {"listen": %q, "bridge": %s},
		"rpc": {"listen": "off"}, "connectors": []%s}`,
		id, filepath.Join(g.dir, "state"), lj, listen, cloud.Bridge("5s"), remote)
	if err := os.WriteFile(filepath.Join(g.dir, "osgate.json"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	g.env = []string{"OSGATE_BROKER_LISTEN=" + listen}
	return g
}

// start runs the gateway until the test ends, started again whenever it
// exits.
func (g *procGateway) start(t *testing.T) {
	g.Process = apptest.StartProcess(t, g.id, func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], append([]string{"run", "-c", filepath.Join(g.dir, "osgate.json")}, g.args...)...)
		cmd.Env = append(append(os.Environ(), mainEnv+"=1", "OSGATE_CONFIG="), g.env...)
		return cmd
	})
}

// otaRow is a line of `fleet ls -json` with the update agent's part.
type otaRow struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Status struct {
		Version string `json:"version"`
		OTA     *struct {
			State  string   `json:"state"`
			Target string   `json:"target"`
			Last   string   `json:"last"`
			Failed []string `json:"failed"`
			Cohort *int     `json:"cohort"`
		} `json:"ota"`
	} `json:"status"`
}

func otaRows(t *testing.T, file string) []otaRow {
	t.Helper()
	code, out, errOut := runCLI("fleet", "-f", file, "ls", "-json")
	if code != 0 {
		t.Fatalf("fleet ls -json: exit %d: %s", code, errOut)
	}
	var rows []otaRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("fleet ls -json: %v\n%s", err, out)
	}
	return rows
}

// manifestVersion is the version a manifest file of the channel names.
func manifestVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ota.ParseManifest(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m.Version
}

// startRolloutCloud starts the cloud Mosquitto of a rollout simulation
// (TLS, passwords; the operator may only read the status documents, as a
// rollout needs); the rollout's driver judges a step every 200 ms without
// news.
func startRolloutCloud(t *testing.T) (cloud *apptest.Cloud, fleetFile string) {
	t.Helper()
	t.Setenv("OSGATE_FLEET", "")
	rolloutTick = 200 * time.Millisecond
	t.Cleanup(func() { rolloutTick = 0 })
	cloud = apptest.StartCloud(t, apptest.CloudOptions{ReadOnlyOperator: true})
	return cloud, cloud.FleetFile
}

// TestFleetRollout: four gateways, each `osgate run` in a process of its
// own on a simulated device, bridged to one cloud Mosquitto; their update
// agents pull their cohort's manifest from nginx. `osgate fleet rollout`
// reaches them through the cloud broker and the channel's directory only.
//
//   - A first rollout of v1.0.0, which every gateway runs, writes every
//     cohort's manifest and passes at once.
//   - A bad release (v3.0.0: its root makes the gateway unhealthy) halts
//     at the canary step: the canary tries it, rolls back by its own
//     health, and every gateway ends confirmed on v1.0.0; the others never
//     restarted; every manifest names v1.0.0 again.
//   - A good release (v2.0.0), one gateway a step: the command, a process
//     of its own, is killed after the first step; `fleet rollout status`
//     still names it as the driver, and the same command run again takes
//     over (the dead process is on this host) and continues from the
//     state file (the first step is not run again) to all four.
//
// Stand-ins: no gokrazy runs here, so ota.SimDevice takes the place of its
// update API and boot loader (A/B root partitions as files, the try-once
// flag, a reboot as the end of the process, restarted by this test as
// gokrazy would); the root "image" is a text naming the version, and the
// bad release's unhealthiness comes from the test-only health knob (tag
// testhook). Real A/B partition writes and boots are tested in the VM test
// (image/vmtest, TestOTA). Everything else is real: the gateways, their
// managed Mosquittos and bridges, the cloud broker, nginx, the agents'
// downloads and signature checks, and the rollout command.
func TestFleetRollout(t *testing.T) {
	dir := t.TempDir()
	cloud, fleetFile := startRolloutCloud(t)

	// The releases, signed with a release key, as an operator builds them.
	keyFile := filepath.Join(dir, "release.key")
	code, out, errOut := runCLI("release", "keygen", keyFile)
	pub, ok := strings.CutPrefix(strings.TrimSpace(out), "public_key: ")
	if code != 0 || !ok {
		t.Fatalf("release keygen: exit %d: %s%s", code, out, errOut)
	}
	boot := filepath.Join(dir, "boot.img")
	if err := os.WriteFile(boot, ota.SimBootImage(), 0o644); err != nil {
		t.Fatal(err)
	}
	release := func(version, unhealthy string) string {
		t.Helper()
		root := filepath.Join(dir, version+".root")
		if err := os.WriteFile(root, ota.SimRootImage(version, unhealthy), 0o644); err != nil {
			t.Fatal(err)
		}
		rel := filepath.Join(dir, "release-"+version)
		code, out, errOut := runCLI("release", "build", "-key", keyFile, "-version", version, "-channel", "stable",
			"-out", rel, "-root", root, "-boot", boot)
		if code != 0 {
			t.Fatalf("release build %s: exit %d: %s%s", version, code, out, errOut)
		}
		return rel
	}
	v1, v2, v3 := release("v1.0.0", ""), release("v2.0.0", ""), release("v3.0.0", "testhook: v3.0.0 is a bad release")

	www := filepath.Join(dir, "www")
	channel := filepath.Join(www, "stable")
	if err := os.MkdirAll(channel, 0o755); err != nil {
		t.Fatal(err)
	}
	ngx := testpeer.StartNginx(t, testpeer.NginxOptions{Root: www})
	otaURL := "http://" + ngx.Addr() + "/stable/cohort-{cohort}.json"

	ids := []string{"gw-1", "gw-2", "gw-3", "gw-4"} // cohorts 09, 52, 71, 66
	gws := map[string]*procGateway{}
	for _, id := range ids {
		gws[id] = startProcGateway(t, cloud, id, otaURL, pub)
	}
	testpeer.WaitFor(t, 120*time.Second, "four gateways online with a cohort", func() bool {
		n := 0
		for _, r := range otaRows(t, fleetFile) {
			if r.State == "online" && r.Status.Version == "v1.0.0" && r.Status.OTA != nil && r.Status.OTA.Cohort != nil {
				n++
			}
		}
		return n == 4
	})

	rollout := func(ctx context.Context, args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := cli(ctx, append([]string{"fleet", "-f", fleetFile, "rollout"}, args...), nil, &o, &e)
		t.Logf("fleet rollout %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), e.String())
		return code, o.String(), e.String()
	}

	// v1.0.0, which they run, to the whole fleet at once: every cohort's
	// manifest, then the channel's.
	if code, out, _ := rollout(context.Background(), v1, "-channel", channel, "-canary", "100%"); code != 0 || !strings.Contains(out, "rollout of v1.0.0 done: 4 gateways confirmed it") {
		t.Fatalf("rollout of the running release: exit %d", code)
	}
	for c := range ota.Cohorts {
		if v := manifestVersion(t, filepath.Join(channel, ota.CohortFile(c))); v != "v1.0.0" {
			t.Fatalf("%s names %s after the first rollout", ota.CohortFile(c), v)
		}
	}

	// The bad release halts at the canary: gw-1 (cohort 09) alone.
	start := time.Now()
	code, out, errOut = rollout(context.Background(), v3, "-channel", channel, "-canary", "5%", "-step", "25%", "-max-failures", "2%", "-step-timeout", "3m")
	if code != 1 || !strings.Contains(errOut, "rollout halted: step 1: 1 of 1 gateways failed, more than the 0 allowed (--max-failures 2%): gw-1: rolled back: unhealthy: testhook: v3.0.0 is a bad release") {
		t.Fatalf("rollout of the bad release: exit %d, want 1 and the halt", code)
	}
	if !strings.Contains(out, "step 1: v3.0.0 published to cohorts 00-09: 1 gateways to confirm it") {
		t.Errorf("the canary step is not cohorts 00-09 with one gateway:\n%s", out)
	}
	t.Logf("the bad release halted %s after it started", time.Since(start).Round(time.Millisecond))
	for _, r := range otaRows(t, fleetFile) {
		o := r.Status.OTA
		switch {
		case r.State != "online" || r.Status.Version != "v1.0.0":
			t.Errorf("%s after the halt: %s on %s, want online on v1.0.0", r.ID, r.State, r.Status.Version)
		case o == nil || o.Target != "" || !slices.Contains([]string{"idle", "confirmed", "rolled back", "refused"}, o.State):
			t.Errorf("%s after the halt: an update under way: %+v", r.ID, o)
		case r.ID == "gw-1" && !slices.Contains(o.Failed, "v3.0.0"):
			t.Errorf("the canary after the halt: %+v, want v3.0.0 failed", o)
		case r.ID != "gw-1" && len(o.Failed) > 0:
			t.Errorf("%s, not in the canary, failed %v", r.ID, o.Failed)
		}
	}
	for _, id := range ids[1:] {
		if n := gws[id].Starts(); n != 1 {
			t.Errorf("%s, not in the canary, started %d times (a reboot: it installed something)", id, n)
		}
	}
	if n := gws["gw-1"].Starts(); n != 3 {
		t.Errorf("the canary started %d times, want 3 (first boot, the try of v3.0.0, the rollback)", n)
	}
	for _, name := range []string{"manifest.json", ota.CohortFile(0), ota.CohortFile(9), ota.CohortFile(99)} {
		if v := manifestVersion(t, filepath.Join(channel, name)); v != "v1.0.0" {
			t.Errorf("%s names %s after the halt, want v1.0.0 again", name, v)
		}
	}
	code, out, _ = rollout(context.Background(), "status", "-channel", channel)
	if code != 0 || !strings.Contains(out, "rollout of v3.0.0 (from v1.0.0): halted: step 1") ||
		!strings.Contains(out, "step 1: cohorts 00-09, 1 of 4 online gateways: halted: 0 confirmed, 1 failed, 0 pending, 0 offline") {
		t.Errorf("status after the halt: exit %d", code)
	}

	// The good release, one gateway a step. The command runs as a
	// process of its own and is killed (SIGKILL: no goodbye in the state
	// file) after the first step; the same command, run again, continues
	// from the state file.
	var firstOut testpeer.Buffer
	cmd := exec.Command(os.Args[0], "fleet", "-f", fleetFile, "rollout", v2, "-channel", channel,
		"-canary", "1", "-step", "1", "-max-failures", "0", "-step-timeout", "3m")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.Stdout, cmd.Stderr = &firstOut, &firstOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var step1 time.Time
	testpeer.WaitFor(t, 3*time.Minute, "the first step of v2.0.0 to pass", func() bool {
		p, err := fleet.Store{Dir: channel}.Load()
		if err != nil || p == nil || p.Target != "v2.0.0" || len(p.Steps) == 0 || p.Steps[0].Outcome != "passed" {
			return false
		}
		step1 = p.Steps[0].Started
		return true
	})
	_ = cmd.Process.Kill()
	<-exited
	t.Logf("the first rollout command, killed after its first step:\n%s", firstOut.String())
	code, out, _ = rollout(context.Background(), "status", "-channel", channel)
	if code != 0 || !strings.Contains(out, "rollout of v2.0.0 (from v1.0.0): running") ||
		!strings.Contains(out, fmt.Sprintf("driven by process %d", cmd.Process.Pid)) ||
		!strings.Contains(out, "step 1: cohorts 00-09, 1 of 4 online gateways: passed: 1 confirmed, 0 failed, 0 pending") {
		t.Errorf("status after the driver was killed: exit %d", code)
	}
	code, out, _ = rollout(context.Background(), v2, "-channel", channel)
	if code != 0 || !strings.Contains(out, "continuing the rollout of v2.0.0 (running, step ") ||
		!strings.Contains(out, "rollout of v2.0.0 done: 4 gateways confirmed it") {
		t.Fatalf("the rollout command run again: exit %d, want it to continue until done", code)
	}
	p, err := fleet.Store{Dir: channel}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 4 || !p.Steps[0].Started.Equal(step1) || p.State != fleet.Done {
		t.Errorf("the plan after the resumed rollout: %s, %d steps, first started %s (was %s)", p.State, len(p.Steps), p.Steps[0].Started, step1)
	}
	var order []string
	for _, s := range p.Steps {
		order = append(order, strings.Join(s.Done, ","))
	}
	if got := strings.Join(order, " "); got != "gw-1 gw-2 gw-4 gw-3" {
		t.Errorf("gateways confirmed by step: %q, want by cohort: gw-1 gw-2 gw-4 gw-3", got)
	}
	for _, r := range otaRows(t, fleetFile) {
		// confirmed, or idle once the agent polled again and found what
		// it runs; the last outcome stays.
		if o := r.Status.OTA; r.State != "online" || r.Status.Version != "v2.0.0" || o == nil || o.Last != "confirmed v2.0.0" ||
			o.Target != "" || o.State != "confirmed" && o.State != "idle" {
			t.Errorf("%s after the good release: %s on %s, %+v; want online and confirmed on v2.0.0", r.ID, r.State, r.Status.Version, o)
		}
	}
	if v := manifestVersion(t, filepath.Join(channel, "manifest.json")); v != "v2.0.0" {
		t.Errorf("the channel's manifest.json names %s after the rollout, want v2.0.0", v)
	}
}
