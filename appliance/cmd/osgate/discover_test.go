package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestDiscoverMatchesREADMEs runs `osgate run` as on an appliance (with
// the OTA agent and connectors of every type that has commands) and checks
// that rpc.discover lists exactly the methods the READMEs document: the
// methods table of appliance/rpc/README.md and the command tables of the
// drivers' READMEs. Each method comes with a summary.
func TestDiscoverMatchesREADMEs(t *testing.T) {
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	dir := t.TempDir()
	port := testpeer.FreePort(t)
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "osgate.json")
	doc := fmt.Sprintf(`{"gateway": {"id": "gw-discover", "state_dir": %q}, "broker": {"managed": false, "url": %q},
		"rpc": {"listen": %q},
		"connectors": [
			{"name": "mb", "type": "mbus", "settings": {"port": "/dev/osgate-test-no-such-port"}},
			{"name": "zw", "type": "zwave", "settings": {"port": "/dev/osgate-test-no-such-port"}},
			{"name": "sys", "type": "system", "devices": [{"name": "gw", "interval": "1h"}]}]}`,
		state, br.URL(), testpeer.Addr(port))
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "gokr-pw.txt")
	otaFile := filepath.Join(dir, "ota.json")
	otaDoc := fmt.Sprintf(`{"url": "http://127.0.0.1:1/stable/manifest.json", "public_key": %q, "password_file": %q, "interval": "24h"}`,
		base64.StdEncoding.EncodeToString(pub), pwFile)
	for f, b := range map[string]string{cfg: doc, otaFile: otaDoc, pwFile: "not-a-real-password\n"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- cli(ctx, []string{"run", "-c", cfg, "-ota", otaFile}, nil, os.Stdout, os.Stderr) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("osgate run exited %d", code)
		}
	}()
	testpeer.WaitTCP(t, testpeer.Addr(port), 30*time.Second)
	key, err := os.ReadFile(filepath.Join(state, appliance.LocalKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := rpc.NewClient("http://"+testpeer.Addr(port), strings.TrimSpace(string(key)), nil)
	defer c.Close()
	var d rpc.Document
	testpeer.WaitFor(t, 30*time.Second, "the driver commands in rpc.discover", func() bool {
		callCtx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		if err := c.Call(callCtx, "rpc.discover", nil, &d); err != nil {
			t.Fatalf("rpc.discover: %v", err)
		}
		return slices.ContainsFunc(d.Methods, func(m rpc.MethodObject) bool { return m.Name == "zwave.nodes" })
	})
	var discovered []string
	for _, m := range d.Methods {
		discovered = append(discovered, m.Name)
		if m.Summary == "" {
			t.Errorf("%s has no summary", m.Name)
		}
	}
	documented := readmeMethods(t)
	for _, m := range discovered {
		if !slices.Contains(documented, m) {
			t.Errorf("rpc.discover lists %s, which no README documents", m)
		}
	}
	for _, m := range documented {
		if !slices.Contains(discovered, m) {
			t.Errorf("a README documents %s, which rpc.discover does not list", m)
		}
	}
	t.Logf("rpc.discover lists %d methods: %v", len(discovered), discovered)
	if len(discovered) < 15 {
		t.Errorf("only %d methods: %v", len(discovered), discovered)
	}
	// A command has its driver's params and the core's "connector", and
	// the scope it needs.
	for _, m := range d.Methods {
		switch m.Name {
		case "zwave.include":
			var names []string
			for _, p := range m.Params {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, []string{"timeout", "security", "pin", "downgrade", "connector"}) {
				t.Errorf("zwave.include params %v", names)
			}
			if m.Scope != "write" {
				t.Errorf("zwave.include needs %q, want write", m.Scope)
			}
		case "zwave.provision_add":
			var names []string
			for _, p := range m.Params {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, []string{"dsk", "security", "name", "location", "connector"}) {
				t.Errorf("zwave.provision_add params %v", names)
			}
			if m.Scope != "write" {
				t.Errorf("zwave.provision_add needs %q, want write", m.Scope)
			}
		case "zwave.keys":
			if m.Scope != "admin" {
				t.Errorf("zwave.keys needs %q, want admin", m.Scope)
			}
		}
	}
}

// readmeMethods are the methods the READMEs document: the first column
// of the methods table in appliance/rpc/README.md (without the TYPE.COMMAND
// placeholder) and of the command tables of drivers/*/README.md.
func readmeMethods(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..", "..")
	var out []string
	add := func(file, section string) {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(b), "\n"+section+"\n")
		if !ok {
			return
		}
		if i := strings.Index(rest, "\n#"); i >= 0 {
			rest = rest[:i] // the table, not the sections after it
		}
		row := regexp.MustCompile("(?m)^\\| `([a-z][a-z_.]*)` \\|")
		for _, m := range row.FindAllStringSubmatch(rest, -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	add("appliance/rpc/README.md", "## Methods")
	drivers, err := filepath.Glob(filepath.Join(root, "drivers", "*", "README.md"))
	if err != nil || len(drivers) == 0 {
		t.Fatalf("driver READMEs: %v", err)
	}
	for _, f := range drivers {
		rel, _ := filepath.Rel(root, f)
		add(rel, "## Commands")
	}
	return out
}
