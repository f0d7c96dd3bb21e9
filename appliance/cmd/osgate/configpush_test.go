//go:build testhook

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/fleet"
	"github.com/osgate/osgate/internal/testpeer"
)

// cfgRow is a line of `fleet ls -json` with the configuration's part.
type cfgRow struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Status struct {
		Config *struct {
			Version  string   `json:"version"`
			Origin   string   `json:"origin"`
			Error    string   `json:"error"`
			Bad      []string `json:"bad"`
			Trial    bool     `json:"trial"`
			Rejected *struct {
				Version, Reason, At string
			} `json:"rejected"`
		} `json:"config"`
	} `json:"status"`
}

func cfgRows(t *testing.T, file string) map[string]cfgRow {
	t.Helper()
	code, out, errOut := runCLI("fleet", "-f", file, "ls", "-json")
	if code != 0 {
		t.Fatalf("fleet ls -json: exit %d: %s", code, errOut)
	}
	var rows []cfgRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("fleet ls -json: %v\n%s", err, out)
	}
	m := map[string]cfgRow{}
	for _, r := range rows {
		m[r.ID] = r
	}
	return m
}

// docVersion is the version the status document names for gateway id's
// document rendered from a pushed file.
func docVersion(doc, id string) string {
	sum := sha256.Sum256([]byte(strings.ReplaceAll(doc, "{gateway}", id)))
	return hex.EncodeToString(sum[:])[:12]
}

// readDir is every file of dir but the push's state and lock, by name.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if e.Name() == fleet.ConfigPlanFile || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

// TestFleetConfigPush: four gateways, each `osgate run` in a process of
// its own with its managed Mosquitto bridged to one cloud Mosquitto,
// pull their signed configuration from nginx ({gateway}.json). `osgate
// fleet config push` reaches them through the cloud broker (their status
// documents) and the documents' directory only.
//
//   - A first configuration to every gateway at once: each takes its own
//     document (the file's {gateway} is its id), keeps it through its
//     trial, and the push is done.
//   - A second one to ring=test, one gateway, then the rest: the three
//     of the ring confirm it; gw-4 (ring=prod) keeps the first, and its
//     document is not touched.
//   - A bad one (its only connector polls a port where nothing listens,
//     so every connector fails during the trial) halts at the canary:
//     the canary rolls it back by its own health and names it as
//     rejected; every gateway runs the configuration it confirmed before,
//     off trial; every document and signature is back byte for byte.
//
// Everything is real but the gateways' host: the gateways, their brokers
// and bridges, the cloud broker, nginx, the signatures, and the command.
func TestFleetConfigPush(t *testing.T) {
	dir := t.TempDir()
	cloud, fleetFile := startRolloutCloud(t)
	keyFile := filepath.Join(dir, "config.key")
	code, out, errOut := runCLI("config", "keygen", keyFile)
	pub, ok := strings.CutPrefix(strings.TrimSpace(out), "public_key: ")
	if code != 0 || !ok {
		t.Fatalf("config keygen: exit %d: %s%s", code, out, errOut)
	}
	www := filepath.Join(dir, "www")
	docs := filepath.Join(www, "gateways")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	ngx := testpeer.StartNginx(t, testpeer.NginxOptions{Root: www})
	remote := fmt.Sprintf(`{"url": "http://%s/gateways/{gateway}.json", "public_key": %q, "interval": "1s", "timeout": "5s"}`, ngx.Addr(), pub)

	ids := []string{"gw-1", "gw-2", "gw-3", "gw-4"}
	for _, id := range ids {
		ring := "test"
		if id == "gw-4" {
			ring = "prod"
		}
		newProcGateway(t, cloud, id, map[string]string{"ring": ring}, remote).start(t)
	}
	testpeer.WaitFor(t, 120*time.Second, "four gateways online on their local file", func() bool {
		n := 0
		for _, r := range cfgRows(t, fleetFile) {
			if r.State == "online" && r.Status.Config != nil && r.Status.Config.Origin == "local" {
				n++
			}
		}
		return n == 4
	})

	// The pushed documents: what the gateways' bootstrap files say, with
	// a short trial; the broker's listen address is each one's default.
	doc := func(connectors string) string {
		return fmt.Sprintf(`{"gateway": {"id": "{gateway}", "config_grace": "3s"},
  "broker": {"bridge": {"address": %q, "username": "gateways", "password": "gw-secret", "keepalive": "5s"}},
  "rpc": {"listen": "off"},
  "connectors": [%s]
}
`, cloud.Broker.Addr(), connectors)
	}
	write := func(name, text string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	first := doc("")
	second := doc(`{"name": "hook", "type": "testhook", "devices": [{"name": "hook", "interval": "500ms"}]}`)
	bad := doc(fmt.Sprintf(`{"name": "plc", "type": "modbus", "settings": {"transport": "tcp", "address": %q, "timeout": "200ms"},
    "devices": [{"name": "plc-1", "unit_id": 1, "interval": "200ms", "channels": [{"name": "r0", "register": "holding", "address": 0, "type": "uint16"}]}]}`,
		testpeer.Addr(testpeer.FreePort(t))))
	push := func(args ...string) (int, string, string) {
		t.Helper()
		var o, e bytes.Buffer
		start := time.Now()
		code := cli(context.Background(), append([]string{"fleet", "-f", fleetFile, "config"}, args...), nil, &o, &e)
		t.Logf("fleet config %s: exit %d in %s\n%s%s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), o.String(), e.String())
		return code, o.String(), e.String()
	}
	runs := func(want map[string]string) {
		t.Helper()
		rows := cfgRows(t, fleetFile)
		for id, w := range want {
			c := rows[id].Status.Config
			if rows[id].State != "online" || c == nil || c.Version != docVersion(w, id) || c.Origin != "remote" || c.Trial {
				t.Errorf("%s: %s, config %+v; want online on %s from remote, off trial", id, rows[id].State, c, docVersion(w, id))
			}
		}
	}

	code, out, _ = push("push", write("first.json", first), "-dir", docs, "-gateways", "all", "-key", keyFile, "-canary", "100%", "-step-timeout", "1m")
	if code != 0 || !strings.Contains(out, "done: 4 gateways confirmed it") {
		t.Fatalf("push of the first configuration: exit %d", code)
	}
	runs(map[string]string{"gw-1": first, "gw-2": first, "gw-3": first, "gw-4": first})

	code, out, _ = push("push", write("second.json", second), "-dir", docs, "-gateways", "ring=test", "-key", keyFile,
		"-canary", "1", "-step", "100%", "-max-failures", "0", "-step-timeout", "1m")
	if code != 0 || !strings.Contains(out, "done: 3 gateways confirmed it") || !strings.Contains(out, "step 2 passed") {
		t.Fatalf("push of the second configuration to ring=test: exit %d, want two steps to the three of the ring", code)
	}
	runs(map[string]string{"gw-1": second, "gw-2": second, "gw-3": second, "gw-4": first})
	if b, err := os.ReadFile(filepath.Join(docs, "gw-4.json")); err != nil || string(b) != strings.ReplaceAll(first, "{gateway}", "gw-4") {
		t.Errorf("gw-4's document after a push to ring=test: %v\n%s", err, b)
	}

	before := readDir(t, docs)
	code, out, errOut = push("push", write("bad.json", bad), "-dir", docs, "-gateways", "all", "-key", keyFile,
		"-canary", "5%", "-step", "50%", "-max-failures", "0", "-step-timeout", "1m")
	if code != 1 || !strings.Contains(errOut, "rollout halted: step 1: 1 of 1 gateways failed, more than the 0 allowed (--max-failures 0): ") ||
		!strings.Contains(errOut, "rolled back: unhealthy for 3s: ") || !strings.Contains(errOut, "every connector is failing") {
		t.Fatalf("push of the bad configuration: exit %d, want 1 and a halt at the canary for its failing connector", code)
	}
	if !strings.Contains(out, ": 1 gateways to confirm it (1 of 4 online ones so far)") || !strings.Contains(out, "every document the rollout wrote is back as it was") {
		t.Errorf("the bad configuration's canary is not one gateway, or its documents are not said to be back:\n%s", out)
	}
	p, err := fleet.ConfigStore(docs).Load()
	if err != nil || p == nil || len(p.Steps) != 1 || len(p.Steps[0].Gateways) != 1 || p.State != fleet.Halted {
		t.Fatalf("the bad push's state: %v %+v", err, p)
	}
	canary := p.Steps[0].Gateways[0]
	if after := readDir(t, docs); len(after) != len(before) {
		t.Errorf("files after the halt: %d, before the push %d", len(after), len(before))
	} else {
		for name, b := range before {
			if after[name] != b {
				t.Errorf("%s is not back byte for byte after the halt", name)
			}
		}
	}
	// Every gateway on the configuration it confirmed before, off trial;
	// the canary names the bad one as rejected, the others never saw it.
	testpeer.WaitFor(t, 30*time.Second, "every gateway back on its confirmed configuration", func() bool {
		for id, r := range cfgRows(t, fleetFile) {
			want := second
			if id == "gw-4" {
				want = first
			}
			if c := r.Status.Config; r.State != "online" || c == nil || c.Version != docVersion(want, id) || c.Trial {
				return false
			}
		}
		return true
	})
	for id, r := range cfgRows(t, fleetFile) {
		rej := r.Status.Config.Rejected
		switch {
		case id == canary && (rej == nil || rej.Version != docVersion(bad, id) || !strings.Contains(rej.Reason, "every connector is failing")):
			t.Errorf("the canary %s names as rejected %+v, want %s", id, rej, docVersion(bad, id))
		case id != canary && rej != nil:
			t.Errorf("%s, not in the canary, rejected %+v", id, rej)
		}
	}
	code, out, _ = push("status", "-dir", docs)
	if code != 0 || !strings.Contains(out, "rollout of config "+docVersion(bad, "{gateway}")+": halted: step 1") ||
		!strings.Contains(out, "step 1: the documents of "+canary+", 1 of 4 online gateways: halted: 0 confirmed, 1 failed, 0 pending, 0 offline") {
		t.Errorf("status after the halt: exit %d", code)
	}
}
