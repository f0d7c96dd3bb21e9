package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestFleetCannotChooseWhatRuns runs osgate as `osgate run -c` does, with
// a bootstrap file that pulls its configuration from nginx. The fleet
// publishes a correctly signed document that names a script as
// broker.binary and another state dir: it is refused with the keys named
// in gateway.config.status, the script never runs, and the gateway keeps
// the local file. A signed document that stays within what a fleet may
// set is then taken, as before.
func TestFleetCannotChooseWhatRuns(t *testing.T) {
	dir := t.TempDir()
	state, www := filepath.Join(dir, "state"), filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(www, "gateways"), 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "evil-ran")
	evil := filepath.Join(dir, "evil.sh")
	mosquitto := testpeer.LookPath(t, "mosquitto", "mosquitto")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+marker+"\nexec "+mosquitto+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pub, privText, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := sign.ParsePrivateKey(privText)
	nginx := testpeer.StartNginx(t, testpeer.NginxOptions{Root: www})
	const key = "fleet-test-key"
	bport, rport := testpeer.FreePort(t), testpeer.FreePort(t)
	doc := func(extra, interval string) string {
		return fmt.Sprintf(`{"gateway": {"id": "gw-fleet"%s},
			"broker": {"listen": %q%s},
			"rpc": {"listen": %q, "api_keys": [{"name": "t", "sha256": %q}]},
			"connectors": [{"name": "sys", "type": "system", "devices": [{"name": "gateway", "interval": %q}]}]}`,
			map[bool]string{true: fmt.Sprintf(`, "state_dir": %q`, filepath.Join(dir, "elsewhere")), false: ""}[extra != ""],
			testpeer.Addr(bport), extra, testpeer.Addr(rport), apikey.Hash(key), interval)
	}
	publish := func(d string) {
		t.Helper()
		p := filepath.Join(www, "gateways", "gw-fleet.json")
		if err := os.WriteFile(p+".sig", sign.Sign(priv, []byte(d)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publish(doc(fmt.Sprintf(`, "binary": %q`, evil), "5s"))

	local := fmt.Sprintf(`{"gateway": {"id": "gw-fleet", "state_dir": %q},
		"broker": {"listen": %q},
		"rpc": {"listen": %q, "api_keys": [{"name": "t", "sha256": %q}]},
		"remote": {"url": "http://%s/gateways/{gateway}.json", "public_key": %q, "interval": "1s"},
		"connectors": [{"name": "sys", "type": "system", "devices": [{"name": "gateway", "interval": "10s"}]}]}`,
		state, testpeer.Addr(bport), testpeer.Addr(rport), apikey.Hash(key), nginx.Addr(), pub)
	cfgFile := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(cfgFile, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runCmd(ctx, []string{"-c", cfgFile, "-ota", filepath.Join(dir, "no-ota.json")}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("osgate run did not stop within 60 s")
		}
	})
	testpeer.WaitTCP(t, testpeer.Addr(rport), 60*time.Second)
	client := rpc.NewClient("http://"+testpeer.Addr(rport), key, nil)
	defer client.Close()
	var st source.Status
	status := func() source.Status {
		t.Helper()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		var s source.Status
		if err := client.Call(cctx, "gateway.config.status", nil, &s); err != nil {
			t.Fatalf("gateway.config.status: %v", err)
		}
		return s
	}
	testpeer.WaitFor(t, 30*time.Second, "the refusal in the status", func() bool {
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the fleet's broker.binary was executed")
		}
		st = status()
		return st.LastOutcome == "refused"
	})
	for _, want := range []string{
		"broker.binary: runs a program on the gateway: only the local bootstrap file may set it",
		"gateway.state_dir: is where the gateway writes its state: only the local bootstrap file may set it",
	} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("last_error lacks %q:\n%s", want, st.LastError)
		}
	}
	if st.Source != source.Local {
		t.Errorf("running from %s, want the local file", st.Source)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the fleet's broker.binary was executed")
	}
	if _, err := os.Stat(filepath.Join(dir, "elsewhere")); err == nil {
		t.Fatal("the fleet's state_dir was written")
	}

	// A document within what a fleet may set is taken.
	publish(doc("", "7s"))
	testpeer.WaitFor(t, 60*time.Second, "the fleet's document to be taken", func() bool {
		st = status()
		return st.Source == source.Remote
	})
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the fleet's broker.binary was executed")
	}
	if out, err := exec.Command("ls", state).CombinedOutput(); err != nil || !strings.Contains(string(out), "config.db") {
		t.Errorf("state dir: %s %v", out, err)
	}
}
