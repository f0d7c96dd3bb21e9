//go:build vmtest

package vmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The amd64 test image's gokrazy password (image/amd64/config.json).
const webPassword = "osgate-vmtest"

// TestVM boots the amd64 appliance image (OSGATE_VM_IMAGE, built by
// `make vm-test`) in qemu and shows from the host, in order:
//
//   - first boot copies the bootstrap config from the FAT boot partition,
//     and the gateway pulls its configuration from a fleet server
//   - the gateway's own telemetry arrives on the image's Mosquitto through
//     the forwarded port (the managed broker listens on 0.0.0.0 with a
//     password, as the bootstrap config says)
//   - JSON-RPC answers gateway.status with the right key, refuses a wrong one
//   - the clock is set from the VM's RTC (the sandbox has no NTP)
//   - osgate killed (SIGKILL, through the test hook connector) comes back:
//     gokrazy restarts it
//   - a poll made to hang (test hook) is detected by the in-process
//     watchdog, which exits 70, and gokrazy restarts the gateway
//   - a reboot (gokrazy's /reboot) keeps the config cache (the gateway
//     comes back on the cached fleet config while the fleet server is down)
//     and Mosquitto's persisted queue (a persistent session gets what was
//     queued for it before the reboot)
func TestVM(t *testing.T) {
	img := os.Getenv("OSGATE_VM_IMAGE")
	if img == "" {
		t.Fatal("OSGATE_VM_IMAGE is not set: run `make vm-test`, which builds the amd64 image and sets it")
	}
	for _, tool := range []string{"qemu-system-x86_64", "mcopy", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run image/deps.sh (qemu-system-x86, mtools): %v", tool, err)
		}
	}
	requireTestHook(t)

	rpcKey, wrongKey := randomKey(t), randomKey(t)
	brokerPassword := randomKey(t)
	fl := startFleet(t)
	local := gatewayConfig(rpcKey, brokerPassword, "gateway")
	local["remote"] = map[string]any{
		"url":        fmt.Sprintf("http://10.0.2.2:%d/osgate.json", fl.port),
		"interval":   "2s",
		"public_key": fl.pub,
	}
	// The fleet's config differs from the bootstrap file in one device
	// name, so the topic shows which of the two is running.
	remote := gatewayConfig(rpcKey, brokerPassword, "fleet-gateway")
	fl.publish(mustJSON(t, remote))

	disk := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", img, err, out)
	}
	putBootstrap(t, disk, mustJSON(t, local))

	v := startVM(t, disk, webPassword)

	var st status
	v.eventually("gokrazy web UI answers", 4*time.Minute, func() error {
		code, _, err := v.webGet(t.Context(), "/")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("HTTP %d", code)
		}
		return err
	})
	v.eventually("RPC gateway.status answers with the right key", 4*time.Minute, func() error {
		var err error
		st, err = gatewayStatus(v.rpc, rpcKey)
		return err
	})
	if st.ID != "vmtest" {
		t.Fatalf("gateway.status id = %q, want vmtest (the bootstrap config's)", st.ID)
	}
	// No NTP in the sandbox: the clock is set from the VM's real-time
	// clock (qemu's emulated PC clock, /dev/rtc0), the image's default
	// second source after pool.ntp.org.
	v.eventually("the clock is synced from the RTC", 2*time.Minute, func() error {
		_, res, err := rpcCall(v.rpc, rpcKey, "gateway.status", nil)
		if err != nil {
			return err
		}
		var cs struct {
			ClockSet bool `json:"clock_set"`
			Clock    struct {
				State  string   `json:"state"`
				Source string   `json:"source"`
				Errors []string `json:"errors"`
			} `json:"clock"`
		}
		if err := json.Unmarshal(res, &cs); err != nil {
			return err
		}
		if !cs.ClockSet || cs.Clock.State != "synced" || cs.Clock.Source != "rtc" {
			return fmt.Errorf("clock %+v", cs.Clock)
		}
		return nil
	})
	code, _, err := rpcCall(v.rpc, wrongKey, "gateway.status", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("gateway.status with a wrong key: HTTP %d (%v), want 401", code, err)
	}
	code, _, err = rpcCall(v.rpc, "", "gateway.status", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("gateway.status without a key: HTTP %d (%v), want 401", code, err)
	}

	var cs configStatus
	v.eventually("the fleet config is pulled and applied", 4*time.Minute, func() error {
		var err error
		cs, err = gatewayConfigStatus(v.rpc, rpcKey)
		if err == nil && cs.Source != "remote" {
			err = fmt.Errorf("config source %q, want remote", cs.Source)
		}
		return err
	})

	sub, err := mqttConnect(t, v.mqtt, "vmtest", brokerPassword, "vmtest-watch", true, "telemetry/vmtest/#")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.close()
	since := time.Now()
	v.eventually("the gateway's own telemetry arrives through the forwarded broker port", 3*time.Minute, func() error {
		m, ok := sub.find(func(m telemetry) bool {
			return m.Topic == "telemetry/vmtest/fleet-gateway" && m.Values["uptime"] != nil
		})
		if !ok {
			return fmt.Errorf("no telemetry/vmtest/fleet-gateway message with uptime yet")
		}
		if m.TS.Year() < 2025 {
			return fmt.Errorf("telemetry stamped %s", m.TS)
		}
		return nil
	})
	if err := mqttRejects(t, v.mqtt); err != nil {
		t.Fatalf("the broker beyond loopback must refuse a wrong password: %v", err)
	}

	// A crash: SIGKILL through the test hook; gokrazy restarts osgated,
	// which execs osgate again.
	before := st.Started
	if _, _, err := rpcCall(v.rpc, rpcKey, "connector.command", map[string]any{"connector": "hook", "command": "crash"}); err != nil {
		t.Fatalf("testhook crash: %v", err)
	}
	v.eventually("osgate killed with SIGKILL is restarted by gokrazy", 4*time.Minute, func() error {
		s, err := gatewayStatus(v.rpc, rpcKey)
		if err == nil && s.Started == before {
			err = fmt.Errorf("still the process started at %s", before)
		}
		if err == nil {
			st = s
		}
		return err
	})
	if log := v.serviceLog("/user/osgated"); !strings.Contains(log, "signal: killed") {
		t.Fatalf("gokrazy's log of osgated does not show the kill:\n%s", tail(log, 4000))
	}
	since = time.Now()
	v.eventually("telemetry flows again after the crash", 3*time.Minute, func() error {
		if _, ok := sub.find(func(m telemetry) bool { return m.Topic == "telemetry/vmtest/hook" && m.TS.After(since) }); !ok {
			return fmt.Errorf("no telemetry/vmtest/hook message since the restart")
		}
		return nil
	})

	// A hang: the test hook's polls block ignoring their deadline; the
	// watchdog sees the poll loop stop and exits 70; gokrazy restarts.
	before = st.Started
	if _, _, err := rpcCall(v.rpc, rpcKey, "connector.command", map[string]any{"connector": "hook", "command": "hang"}); err != nil {
		t.Fatalf("testhook hang: %v", err)
	}
	v.eventually("the watchdog exits 70 on the hung poll and gokrazy restarts osgate", 5*time.Minute, func() error {
		log := v.serviceLog("/user/osgated")
		if !strings.Contains(log, "watchdog: exiting so the supervisor restarts the gateway") || !strings.Contains(log, "exit status 70") {
			return fmt.Errorf("no watchdog exit (code 70) in osgated's log yet")
		}
		s, err := gatewayStatus(v.rpc, rpcKey)
		if err == nil && s.Started == before {
			err = fmt.Errorf("still the process started at %s", before)
		}
		return err
	})
	v.eventually("the test hook releases the hang", 2*time.Minute, func() error {
		_, _, err := rpcCall(v.rpc, rpcKey, "connector.command", map[string]any{"connector": "hook", "command": "release"})
		return err
	})
	since = time.Now()
	v.eventually("polls and telemetry resume after the hang", 3*time.Minute, func() error {
		if _, ok := sub.find(func(m telemetry) bool { return m.Topic == "telemetry/vmtest/hook" && m.TS.After(since) }); !ok {
			return fmt.Errorf("no telemetry/vmtest/hook message since the release")
		}
		s, err := gatewayStatus(v.rpc, rpcKey)
		if err == nil {
			st = s
		}
		return err
	})
	sub.close()

	// A reboot: a persistent session leaves messages queued in Mosquitto,
	// the fleet server goes away, gokrazy reboots the machine.
	q, err := mqttConnect(t, v.mqtt, "vmtest", brokerPassword, "vmtest-queue", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.subscribe("telemetry/vmtest/hook"); err != nil {
		t.Fatal(err)
	}
	q.close()
	// Mosquitto writes its persistence file every autosave_interval (5 s)
	// and when it stops; wait for queued messages and one autosave.
	time.Sleep(12 * time.Second)
	fl.setDown(true)
	rebootAt := time.Now()
	before = st.Started
	if code, body, err := v.webPost(t.Context(), "/reboot"); err != nil || code >= 400 {
		t.Fatalf("gokrazy /reboot: HTTP %d %v: %s", code, err, body)
	}
	v.eventually("the gateway is back after the reboot", 5*time.Minute, func() error {
		s, err := gatewayStatus(v.rpc, rpcKey)
		if err == nil && s.Started == before {
			err = fmt.Errorf("still the process started at %s", before)
		}
		return err
	})
	v.eventually("the config cache survived: the fleet config runs from config.db", 2*time.Minute, func() error {
		c, err := gatewayConfigStatus(v.rpc, rpcKey)
		switch {
		case err != nil:
			return err
		case c.Source != "cache":
			return fmt.Errorf("config source %q, want cache (the fleet server is down)", c.Source)
		case c.Version != cs.Version:
			return fmt.Errorf("config version %s, want the fleet's %s", c.Version, cs.Version)
		}
		return nil
	})
	var queued *subscriber
	v.eventually("the persistent session reconnects after the reboot", 2*time.Minute, func() error {
		var err error
		queued, err = mqttConnect(t, v.mqtt, "vmtest", brokerPassword, "vmtest-queue", false, "")
		return err
	})
	defer queued.close()
	// At least minQueued messages from before the reboot: more than the
	// export's own resend of its few in-flight messages could explain.
	const minQueued = 5
	v.eventually("Mosquitto's persisted queue delivers what was queued before the reboot", 2*time.Minute, func() error {
		if n := queued.count(func(m telemetry) bool { return m.Topic == "telemetry/vmtest/hook" && m.TS.Before(rebootAt) }); n < minQueued {
			return fmt.Errorf("%d messages from before the reboot, want at least %d", n, minQueued)
		}
		return nil
	})
	if _, ok := queued.find(func(m telemetry) bool { return m.Topic == "telemetry/vmtest/fleet-gateway" }); ok {
		t.Fatalf("the persistent session got a topic it never subscribed to")
	}
}

// gatewayConfig is the image's config for the test: the managed broker
// (the image's static Mosquitto) listens beyond loopback with a password
// (broker.username "vmtest", which may read telemetry), RPC listens on
// every interface with one key of scope admin (the test restarts the
// gateway through the test hook's commands, scope write, and checks for
// updates, scope admin), and two connectors run: the gateway's own
// telemetry and the test hook.
func gatewayConfig(rpcKey, brokerPassword, systemDevice string) map[string]any {
	sum := sha256.Sum256([]byte(rpcKey))
	return map[string]any{
		"gateway": map[string]any{"id": "vmtest"},
		"broker": map[string]any{
			"binary":   "/usr/local/bin/mosquitto",
			"listen":   "0.0.0.0:1883",
			"username": "vmtest",
			"password": brokerPassword,
		},
		"rpc": map[string]any{
			"listen":   "0.0.0.0:8080",
			"api_keys": []any{map[string]any{"name": "vmtest", "sha256": hex.EncodeToString(sum[:]), "scope": "admin"}},
		},
		"connectors": []any{
			map[string]any{"name": "system", "type": "system",
				"devices": []any{map[string]any{"name": systemDevice, "interval": "2s"}}},
			map[string]any{"name": "hook", "type": "testhook",
				"devices": []any{map[string]any{"name": "hook", "interval": "1s"}}},
		},
	}
}

// putBootstrap writes osgate.json onto the image's FAT boot partition, as
// a user does from a laptop before first boot.
func putBootstrap(t *testing.T, disk string, doc []byte) {
	t.Helper()
	ps, err := partitions(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 4 {
		t.Fatalf("%s: %d partitions, want gokrazy's 4 (boot, root A, root B, perm)", disk, len(ps))
	}
	src := filepath.Join(t.TempDir(), "osgate.json")
	if err := os.WriteFile(src, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("%s@@%d", disk, ps[0].Start)
	if out, err := exec.Command("mcopy", "-o", "-i", target, src, "::osgate.json").CombinedOutput(); err != nil {
		t.Fatalf("mcopy the bootstrap config onto the boot partition: %v: %s", err, out)
	}
}

// mqttRejects reports nil when the broker refuses a wrong password.
func mqttRejects(t *testing.T, port int) error {
	c, err := mqttConnect(t, port, "vmtest", "wrong-password", "vmtest-intruder", true, "")
	if err == nil {
		c.close()
		return fmt.Errorf("connected with a wrong password")
	}
	return nil
}

// requireTestHook fails when the amd64 image's osgate would lack the
// testhook connector: the instance must build it with the tag testhook,
// which drivers/all needs to import drivers/testhook.
func requireTestHook(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "testhook", "-deps", "github.com/osgate/osgate/appliance/cmd/osgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "github.com/osgate/osgate/drivers/testhook\n") {
		t.Fatal("osgate built with the tag testhook does not include the testhook connector: drivers/all must import github.com/osgate/osgate/drivers/testhook under that tag")
	}
	b, err := os.ReadFile("../amd64/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"testhook"`) {
		t.Fatal(`image/amd64/config.json does not build osgate with "GoBuildTags": ["testhook"]`)
	}
}
func mustJSON(t *testing.T, v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
