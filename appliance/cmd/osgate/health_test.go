package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestHealth: `osgate health -c osgate.json` (the container image's
// HEALTHCHECK) succeeds while the gateway run with that file is ok or
// degraded, fails once it is unhealthy (its broker gone, the export queue
// full) and passes again when the broker is back; it fails, saying where
// it asked, when nothing answers.
func TestHealth(t *testing.T) {
	t.Setenv("OSGATE_CONFIG", "")
	t.Setenv("OSGATE_RPC_URL", "")
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	port := testpeer.FreePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "osgate.json")
	doc := fmt.Sprintf(`{"gateway": {"id": "gw-health", "state_dir": %q}, "broker": {"managed": false, "url": %q},
		"export": {"queue_limit": 5}, "rpc": {"listen": "0.0.0.0:%d"},
		"connectors": [{"name": "system", "type": "system", "devices": [{"name": "gw", "interval": "100ms"}]}]}`,
		filepath.Join(dir, "state"), br.URL(), port)
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	startGateway(t, file)
	testpeer.WaitTCP(t, testpeer.Addr(port), 30*time.Second)

	health := func() (int, string, string) { return runCLI("health", "-c", file) }
	testpeer.WaitFor(t, 30*time.Second, "osgate health passes", func() bool {
		code, _, _ := health()
		return code == 0
	})
	if code, out, errOut := health(); code != 0 || !strings.HasPrefix(out, "ok") {
		t.Fatalf("healthy gateway: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	br.Stop()
	testpeer.WaitFor(t, 30*time.Second, "osgate health fails with the broker gone", func() bool {
		code, _, _ := health()
		return code == 1
	})
	code, out, errOut := health()
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "osgate: health: unhealthy: export queue full") {
		t.Fatalf("unhealthy gateway: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	br.Start()
	testpeer.WaitFor(t, 60*time.Second, "osgate health passes with the broker back", func() bool {
		code, _, _ := health()
		return code == 0
	})

	// Nobody at the address: says where it asked, and why there.
	nobody := testpeer.Addr(testpeer.FreePort(t))
	code, _, errOut = runCLI("health", "-url", "http://"+nobody)
	if want := "osgate: health: http://" + nobody + "/healthz (the URL from -url) does not answer: dial tcp"; code != 1 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("nobody listening: exit %d, stderr %q; want it to start with %q", code, errOut, want)
	}
}

// TestBrokerPassword: `osgate broker password` prints the password osgate
// made in broker.password_file (the container's MQTT login), from the
// environment's defaults when no config is given.
func TestBrokerPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "broker-password")
	t.Setenv("OSGATE_CONFIG", "")
	t.Setenv(config.EnvStateDir, dir)
	t.Setenv(config.EnvBrokerListen, "0.0.0.0:1883")
	t.Setenv(config.EnvBrokerUsername, "telemetry")
	t.Setenv(config.EnvBrokerPasswordFile, pwFile)

	code, _, errOut := runCLI("broker", "password")
	if code != 1 || !strings.Contains(errOut, "osgate makes the file when the broker first starts") {
		t.Fatalf("before the file is made: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile(pwFile, []byte("made-by-osgate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("broker", "password"); code != 0 || out != "made-by-osgate\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A config that gives the password itself: nothing to print.
	file := filepath.Join(dir, "osgate.json")
	os.WriteFile(file, []byte(`{"broker": {"username": "scada", "password": "pw"}}`), 0o644)
	code, out, errOut := runCLI("broker", "password", "-c", file)
	if code != 1 || strings.Contains(out+errOut, `"pw"`) || !strings.Contains(errOut, "names no broker.password_file") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
