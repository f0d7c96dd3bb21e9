//go:build containertest

package containertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/testpeer"
)

// archives returns where `make container` wrote the image's archives
// ($OSGATE_CONTAINER_DIR) and version the version they carry
// ($OSGATE_VERSION).
func archives(t *testing.T) (dir, version string) {
	t.Helper()
	dir, version = os.Getenv("OSGATE_CONTAINER_DIR"), os.Getenv("OSGATE_VERSION")
	if dir == "" || version == "" {
		t.Fatal("OSGATE_CONTAINER_DIR and OSGATE_VERSION are not set: run make container-test")
	}
	return dir, version
}

// pod runs Podman through image/container/podman.sh on the test's own
// storage, so that nothing else on the machine is touched.
type pod struct {
	t    *testing.T
	root string
}

func (p pod) run(args ...string) (string, error) {
	cmd := exec.Command("../container/podman.sh", args...)
	cmd.Env = append(os.Environ(), "OSGATE_PODMAN_ROOT="+p.root)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, dropSystemdNoise(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// must runs podman and fails the test when it fails.
func (p pod) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// dropSystemdNoise removes Podman's complaint that it cannot set up a
// systemd timer for the health check (there is no systemd here; the test
// runs the checks itself with `podman healthcheck run`).
func dropSystemdNoise(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.Contains(l, "unable to get systemd connection") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// clean removes every container, volume and image of the test's storage.
func (p pod) clean() {
	p.run("rm", "-a", "-f", "-t", "0")
	p.run("volume", "rm", "-a", "-f")
	p.run("rmi", "-a", "-f")
}

// loadImage loads the amd64 archive, as `docker load -i` does, into a
// Podman storage of the test's own and returns its name.
func loadImage(t *testing.T) (pod, string) {
	t.Helper()
	dir, version := archives(t)
	testpeer.LookPath(t, "podman", "podman")
	testpeer.LookPath(t, "runc", "runc")
	p := pod{t: t, root: filepath.Join(dir, "test-storage")}
	p.clean()
	t.Cleanup(p.clean)
	out := p.must("load", "-i", filepath.Join(dir, "osgate-"+version+"-amd64.tar"))
	image := "localhost/osgate:" + version + "-amd64"
	if !strings.Contains(out, image) {
		t.Fatalf("podman load: %q; want it to load %s", out, image)
	}
	return p, image
}

// TestContainer runs the amd64 image as a site would and checks it from
// the host.
func TestContainer(t *testing.T) {
	p, image := loadImage(t)
	t.Run("ImageConfig", func(t *testing.T) { testImageConfig(t, p, image) })
	t.Run("EmbeddedDefault", func(t *testing.T) { testEmbeddedDefault(t, p, image) })
	t.Run("MountedConfig", func(t *testing.T) { testMountedConfig(t, p, image) })
}

// testImageConfig: the image runs as uid 10001, keeps its state in the
// /state volume, exposes the broker and the RPC port, checks its health
// with `osgate health` and carries the OCI labels.
func testImageConfig(t *testing.T, p pod, image string) {
	_, version := archives(t)
	var inspect []struct {
		Config struct {
			User         string
			ExposedPorts map[string]any
			Volumes      map[string]any
			Entrypoint   []string
			Cmd          []string
			StopSignal   string
			Labels       map[string]string
		}
		HealthCheck  struct{ Test []string }
		Architecture string
	}
	if err := json.Unmarshal([]byte(p.must("image", "inspect", image)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect %s: %v", image, err)
	}
	c := inspect[0].Config
	if c.User != "10001:10001" {
		t.Errorf("user %q, want 10001:10001", c.User)
	}
	if _, ok := c.Volumes["/state"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v, want /state only", c.Volumes)
	}
	for _, port := range []string{"1883/tcp", "8080/tcp"} {
		if _, ok := c.ExposedPorts[port]; !ok {
			t.Errorf("exposed ports %v lack %s", c.ExposedPorts, port)
		}
	}
	if hc := strings.Join(inspect[0].HealthCheck.Test, " "); hc != "CMD /usr/local/bin/osgate health" {
		t.Errorf("health check %q, want CMD /usr/local/bin/osgate health", hc)
	}
	if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/osgate" || strings.Join(c.Cmd, " ") != "run" {
		t.Errorf("entrypoint %v cmd %v, want osgate run", c.Entrypoint, c.Cmd)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.title":    "osgate",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/osgate/osgate",
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if c.Labels["org.opencontainers.image.revision"] == "" || c.Labels["org.opencontainers.image.created"] == "" {
		t.Errorf("labels %v lack the revision or the creation time", c.Labels)
	}
	if inspect[0].Architecture != "amd64" {
		t.Errorf("architecture %q, want amd64", inspect[0].Architecture)
	}
}

// startContainer runs the image detached and removes it when the test
// ends, logging its output if the test failed.
func startContainer(t *testing.T, p pod, name string, args ...string) {
	t.Helper()
	p.run("rm", "-f", "-t", "0", name)
	p.must(append([]string{"run", "-d", "--name", name}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := p.run("logs", name)
			t.Logf("%s's log:\n%s", name, logs)
		}
		p.run("rm", "-f", "-t", "0", name)
	})
}

// pids returns the host pids of the container's osgate (its pid 1) and of
// the Mosquitto it runs.
func pids(t *testing.T, p pod, name string) (osgate, mosquitto int) {
	t.Helper()
	pid, err := strconv.Atoi(p.must("inspect", "--format", "{{.State.Pid}}", name))
	if err != nil || pid <= 0 {
		t.Fatalf("%s's pid: %v", name, err)
	}
	testpeer.WaitFor(t, 30*time.Second, name+"'s mosquitto", func() bool {
		// Any of osgate's threads may have started it.
		var children []string
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, task := range tasks {
			raw, _ := os.ReadFile(task)
			children = append(children, strings.Fields(string(raw))...)
		}
		for _, f := range children {
			comm, _ := os.ReadFile("/proc/" + f + "/comm")
			if strings.TrimSpace(string(comm)) == "mosquitto" {
				mosquitto, _ = strconv.Atoi(f)
				return true
			}
		}
		return false
	})
	return pid, mosquitto
}

// checkNonRoot: every id of the process (real, effective, saved, file
// system) is 10001, the image's osgate user.
func checkNonRoot(t *testing.T, pid int, what string) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	seen := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			seen++
			if f[1] != "10001" || f[2] != "10001" || f[3] != "10001" || f[4] != "10001" {
				t.Errorf("%s runs with %q, want 10001 throughout", what, l)
			}
		}
	}
	if seen != 2 {
		t.Errorf("%s: no Uid and Gid lines in its status:\n%s", what, raw)
	}
}

// health runs the image's HEALTHCHECK now (there is no systemd here to
// run it on a timer) and returns the container's health status.
func health(p pod, name string) string {
	p.run("healthcheck", "run", name)
	s, _ := p.run("inspect", "--format", "{{.State.Health.Status}}", name)
	return s
}

// testEmbeddedDefault: `docker run -p 1883:1883 -v state:/state osgate`
// with no config: the gateway's own telemetry reaches the host through the
// published port within seconds, with the login the image makes.
func testEmbeddedDefault(t *testing.T, p pod, image string) {
	port := testpeer.FreePort(t)
	name := "osgate-ctest-default"
	startContainer(t, p, name, "-p", fmt.Sprintf("127.0.0.1:%d:1883", port), "-v", "osgate-ctest-default:/state", image)

	var pw string
	testpeer.WaitFor(t, 30*time.Second, "osgate broker password in the container", func() bool {
		out, err := p.run("exec", name, "osgate", "broker", "password")
		pw = out
		return err == nil && len(out) >= 32
	})
	sub := testpeer.Subscribe(t, fmt.Sprintf("tcp://127.0.0.1:%d", port), testpeer.SubscriberOptions{
		ClientID: "ctest-default", Filter: "telemetry/#", Username: "telemetry", Password: pw})
	if !sub.WaitDistinct(1, 30*time.Second) {
		t.Fatal("no telemetry from the container's embedded default within 30s of subscribing")
	}
	m := sub.Messages()[0]
	var reading map[string]any
	if err := json.Unmarshal(m.Payload, &reading); err != nil || !strings.HasPrefix(m.Topic, "telemetry/") {
		t.Fatalf("telemetry %s %s: %v", m.Topic, m.Payload, err)
	}

	// Beyond the container's loopback, a client needs the login.
	anon := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).
		SetClientID("ctest-anonymous").SetConnectTimeout(10 * time.Second))
	switch tok := anon.Connect(); {
	case !tok.WaitTimeout(15 * time.Second):
		t.Error("an anonymous client got no answer through the published port within 15s")
	case tok.Error() == nil:
		anon.Disconnect(0)
		t.Error("an anonymous client connected through the published port")
	}

	osgate, mosquitto := pids(t, p, name)
	checkNonRoot(t, osgate, "osgate")
	checkNonRoot(t, mosquitto, "mosquitto")
	if s := health(p, name); s != "healthy" {
		t.Errorf("health %q, want healthy", s)
	}
}

// modbusPeer starts drivers/modbus's pymodbus test server on a free
// loopback port; it is killed when the test ends.
func modbusPeer(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("modbus peer: %s: %v (apt-get install python3-pymodbus)", python, err)
	}
	addr := testpeer.Addr(testpeer.FreePort(t))
	var out testpeer.Buffer
	cmd := exec.Command(python, "-u", "../../drivers/modbus/testdata/server.py", "--tcp", addr, "--tick", "0.1")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("modbus peer: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // ends when the peer is killed in Cleanup
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("modbus peer output:\n%s", out.String())
		}
	})
	testpeer.WaitTCP(t, addr, 30*time.Second)
	return addr
}

// testMountedConfig: a config file mounted into the container reads a
// Modbus server on the host and bridges to a "cloud" Mosquitto on the host.
// The cloud goes away; the container is stopped (within 10 s), removed and
// run again on the same volume; the cloud comes back and receives every
// reading the gateway made meanwhile: the volume kept the queue. The
// HEALTHCHECK turns unhealthy while the gateway's broker is frozen and
// healthy again after.
func testMountedConfig(t *testing.T, p pod, image string) {
	modbus := modbusPeer(t)
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	brokerPort, rpcPort := testpeer.FreePort(t), testpeer.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "osgate.json")
	doc := fmt.Sprintf(`{"gateway": {"id": "gw-ctest"},
  "broker": {"listen": "127.0.0.1:%d", "bridge": {"address": %q, "tls": false, "keepalive": "5s"}},
  "export": {"queue_limit": 50},
  "rpc": {"listen": "127.0.0.1:%d"},
  "connectors": [{"name": "plc", "type": "modbus", "settings": {"transport": "tcp", "address": %q},
    "devices": [
      {"name": "live", "unit_id": 1, "interval": "200ms", "channels": [
        {"name": "t", "register": "holding", "address": 0, "type": "uint32"},
        {"name": "voltage", "register": "input", "address": 10, "type": "float32", "unit": "V"}]},
      {"name": "static", "unit_id": 2, "interval": "1s", "channels": [
        {"name": "hr5", "register": "holding", "address": 5, "type": "uint16"}]}]}]}`,
		brokerPort, cloud.Addr(), rpcPort, modbus)
	if err := os.WriteFile(conf, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	// The host's network: the container reaches the Modbus server and the
	// cloud on the host's loopback, and the host its broker.
	args := []string{"--network", "host", "-v", "osgate-ctest-mounted:/state",
		"-v", conf + ":/etc/osgate/osgate.json:ro", "-e", "OSGATE_CONFIG=/etc/osgate/osgate.json", image}
	name := "osgate-ctest-mounted"
	startContainer(t, p, name, args...)

	// The local broker's loopback listener: anonymous clients read
	// telemetry. A persistent session: Mosquitto keeps this subscriber's
	// messages in the volume across the restart too.
	local := testpeer.Subscribe(t, fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort), testpeer.SubscriberOptions{
		ClientID: "ctest-local", Filter: "telemetry/#"})
	sky := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "ctest-cloud", Filter: "telemetry/#"})

	// Values from the host's Modbus server, through the container.
	for topic, check := range map[string]func(map[string]any) bool{
		"telemetry/gw-ctest/live":   func(r map[string]any) bool { return r["voltage"] == 230.1 && r["t"] != nil },
		"telemetry/gw-ctest/static": func(r map[string]any) bool { return r["hr5"] == 38.0 }, // 7*5+3
	} {
		m, ok := sky.WaitMessage(60*time.Second, func(m testpeer.Message) bool { return m.Topic == topic })
		if !ok {
			t.Fatalf("no %s in the cloud within 60s", topic)
		}
		var r struct{ Values map[string]any }
		if err := json.Unmarshal(m.Payload, &r); err != nil || !check(r.Values) {
			t.Fatalf("%s: %s (%v): not the Modbus server's values", topic, m.Payload, err)
		}
	}
	osgate, mosquitto := pids(t, p, name)
	checkNonRoot(t, osgate, "osgate")
	checkNonRoot(t, mosquitto, "mosquitto")

	// The cloud goes away; readings queue in the container, which is
	// stopped, removed and run again on the same volume; the cloud comes
	// back. Twice: a reading lost now and then fails one of the rounds.
	for round := 1; round <= 2; round++ {
		began := time.Now()
		cloud.Stop()
		if !local.WaitDistinct(local.Distinct()+10, 60*time.Second) {
			t.Fatalf("round %d: no readings on the local broker with the cloud away", round)
		}
		stop := time.Now()
		p.must("stop", name)
		if took := time.Since(stop); took > 10*time.Second {
			t.Errorf("round %d: podman stop took %v, want under 10s (Docker's default grace period)", round, took)
		}
		if code := p.must("inspect", "--format", "{{.State.ExitCode}}", name); code != "0" {
			t.Errorf("round %d: exit code after SIGTERM %s, want 0", round, code)
		}
		p.must("rm", name)
		startContainer(t, p, name, args...)
		if !local.WaitDistinct(local.Distinct()+10, 60*time.Second) {
			t.Fatalf("round %d: no readings from the new container on the local broker", round)
		}
		cloud.Start()
		back := time.Now()

		// Every reading the local broker saw reaches the cloud.
		var want []string
		away := 0
		for _, m := range local.Messages() {
			want = append(want, m.Topic+"\x00"+string(m.Payload))
			if m.At.After(began) && m.At.Before(back) {
				away++
			}
		}
		if miss := sky.WaitKeys(want, 90*time.Second); len(miss) > 0 {
			t.Logf("round %d: cloud stopped %s, container stopped %s, cloud started %s", round,
				began.Format(time.StampMilli), stop.Format(time.StampMilli), back.Format(time.StampMilli))
			for _, m := range local.Messages() {
				t.Logf("local %s %s %s", m.At.Format(time.StampMilli), m.Topic, m.Payload)
			}
			t.Fatalf("round %d: %d of %d readings never reached the cloud, e.g. %q", round, len(miss), len(want), miss[0])
		}
		t.Logf("round %d: all %d readings reached the cloud, %d of them made while it was away (%v)",
			round, len(want), away, time.Since(began).Round(time.Second))
	}

	// The HEALTHCHECK: healthy, unhealthy while the gateway's Mosquitto
	// is frozen (the export cannot deliver; its queue fills), healthy
	// again once it runs.
	began := time.Now()
	testpeer.WaitFor(t, 60*time.Second, "healthy", func() bool { return health(p, name) == "healthy" })
	_, mosquitto = pids(t, p, name)
	if err := syscall.Kill(mosquitto, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(mosquitto, syscall.SIGCONT)
	testpeer.WaitFor(t, 120*time.Second, "unhealthy with the broker frozen", func() bool {
		time.Sleep(time.Second)
		return health(p, name) == "unhealthy"
	})
	unhealthy := time.Now()
	syscall.Kill(mosquitto, syscall.SIGCONT)
	testpeer.WaitFor(t, 120*time.Second, "healthy again", func() bool {
		time.Sleep(time.Second)
		return health(p, name) == "healthy"
	})
	t.Logf("health: unhealthy %v after the broker froze, healthy again %v after it ran",
		unhealthy.Sub(began).Round(time.Second), time.Since(unhealthy).Round(time.Second))
}
