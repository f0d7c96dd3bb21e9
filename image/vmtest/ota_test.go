//go:build vmtest

package vmtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"

	"github.com/osgate/osgate/internal/sign"
)

// TestOTA shows the update agent (package ota) in the amd64 appliance in
// qemu, against gokrazy's real update API, with releases that nginx on the
// host serves (the guest reaches it as 10.0.2.2):
//
//   - v1 boots; a v2 release is pulled, written, tried once and confirmed
//     (ota.status says confirmed, gateway.status version v2), and v2
//     survives a reboot
//   - a v3 whose gateway is unhealthy (its image starts osgate on a baked-in
//     config whose one connector always fails) is tried and rolls back to
//     v2 by itself; v3 is remembered as failed and not tried again
//   - a release with a bad signature, and one with a corrupted part, are
//     refused before anything is written (the boot and inactive root
//     partitions of the disk are unchanged)
//
// It builds its own images (image/build.sh on an instance folder it writes
// under OSGATE_OTA_WORK, set by `make vm-test-ota`): the nginx port and the
// release key are in the image's /etc/osgate/ota.json, and /perm holds a
// per-device update password (/perm/gokr-pw.txt) that differs from the one
// baked into the root image.
func TestOTA(t *testing.T) {
	work := os.Getenv("OSGATE_OTA_WORK")
	if work == "" {
		t.Fatal("OSGATE_OTA_WORK is not set: run `make vm-test-ota`")
	}
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/sbin:/sbin")
	for _, tool := range []string{"qemu-system-x86_64", "nginx", "mcopy", "mkfs.ext4", "partx", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run image/deps.sh and apt-get install nginx: %v", tool, err)
		}
	}
	requireTestHook(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work, err = filepath.Abs(work)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(work, 0o755))
	step := stepTimer(t)

	// The host's osgate (release keygen, release build, validate) and the
	// release key; a second key signs the release that must be refused.
	osgate := filepath.Join(work, "osgate")
	// With the test hook, like the amd64 test image: the configs use it.
	run(t, repo, nil, "go", "build", "-tags", "testhook", "-o", osgate, "./appliance/cmd/osgate")
	pub := keygen(t, osgate, filepath.Join(work, "release.key"))
	wrongKeyFile := filepath.Join(work, "wrong.key")
	keygen(t, osgate, wrongKeyFile)
	wrongKey := readPrivateKey(t, wrongKeyFile)

	www := filepath.Join(work, "www")
	must(t, os.MkdirAll(filepath.Join(www, "stable"), 0o755))
	ngx := startReleaseServer(t, www)

	rpcKey, brokerPassword, devicePassword := randomKey(t), randomKey(t), randomKey(t)
	good := mustJSON(t, gatewayConfig(rpcKey, brokerPassword, "gateway"))
	// v3's gateway: the same broker and RPC, and one connector that never
	// gets an answer (nothing listens on the guest's port 1): every
	// connector failing fails the release's trial (health.TrialFailure).
	bad := gatewayConfig(rpcKey, brokerPassword, "gateway")
	bad["connectors"] = []any{map[string]any{"name": "dead", "type": "http",
		"devices": []any{map[string]any{"name": "dead", "interval": "1s", "timeout": "1s",
			"url": "http://127.0.0.1:1/", "channels": []any{map[string]any{"name": "x", "path": "x"}}}}}}
	badDoc := mustJSON(t, bad)
	for name, doc := range map[string][]byte{"good": good, "unhealthy": badDoc} {
		f := filepath.Join(work, name+".json")
		must(t, os.WriteFile(f, doc, 0o600))
		run(t, work, nil, osgate, "validate", f)
	}
	otaJSON := mustJSON(t, map[string]any{
		"url":             fmt.Sprintf("http://10.0.2.2:%d/stable/manifest.json", ngx.port),
		"public_key":      pub,
		"channel":         "stable",
		"interval":        "20s",
		"confirm_after":   "30s",
		"confirm_timeout": "6m",
	})

	// The images: v1 as a disk, v2 and v3 as gok's OTA artifacts.
	inst := newOTAInstance(t, repo, work)
	perm := filepath.Join(work, "perm")
	must(t, os.MkdirAll(perm, 0o755))
	must(t, os.WriteFile(filepath.Join(perm, "gokr-pw.txt"), []byte(devicePassword+"\n"), 0o600))
	disk := filepath.Join(work, "v1.img")
	inst.write(t, "v1.0.0", otaJSON, nil)
	run(t, repo, []string{"PERM_DIR=" + perm}, filepath.Join(repo, "image/build.sh"), inst.dir, disk)
	inst.write(t, "v2.0.0", otaJSON, nil)
	run(t, repo, nil, filepath.Join(repo, "image/build.sh"), inst.dir, filepath.Join(work, "v2.gaf"))
	inst.write(t, "v3.0.0", otaJSON, badDoc)
	run(t, repo, nil, filepath.Join(repo, "image/build.sh"), inst.dir, filepath.Join(work, "v3.gaf"))
	step("build the v1 image and the v2 and v3 artifacts (host)")

	rel := func(version, gaf string) string {
		out := filepath.Join(work, "releases", version)
		run(t, work, nil, osgate, "release", "build", "-key", filepath.Join(work, "release.key"),
			"-version", version, "-channel", "stable", "-out", out, filepath.Join(work, gaf))
		return out
	}
	v2, v3, v4 := rel("v2.0.0", "v2.gaf"), rel("v3.0.0", "v3.gaf"), rel("v4.0.0", "v2.gaf")
	step("osgate release build of v2, v3 and v4 (host)")

	putBootstrap(t, disk, good)
	v := startVM(t, disk, devicePassword)
	t.Cleanup(func() {
		// Registered after startVM's: runs while qemu still runs.
		os.WriteFile(filepath.Join(work, "serial.log"), v.serial.Bytes(), 0o644)
	})
	var tryLog string // osgated's log during the last try, for failures
	v.eventually("v1 boots: RPC gateway.status answers", 5*time.Minute, func() error {
		return wantVersion(v.rpc, rpcKey, "v1.0.0")
	})
	step("boot v1 until the gateway answers")
	var os1 otaStatus
	v.eventually("the OTA agent runs (ota.status)", 2*time.Minute, func() error {
		var err error
		os1, err = getOTAStatus(v.rpc, rpcKey)
		if err == nil && os1.Running != "v1.0.0" {
			err = fmt.Errorf("ota.status running %q", os1.Running)
		}
		return err
	})
	t.Logf("ota.status on v1: %+v", os1)

	// v2: pulled, tried, confirmed.
	ngx.publish(t, v2, nil, nil)
	otaCheck(v.rpc, rpcKey)
	start := time.Now()
	seen := map[string]time.Duration{}
	v.eventually("v2 is pulled, tried and confirmed", 15*time.Minute, func() error {
		s, err := getOTAStatus(v.rpc, rpcKey)
		if err != nil {
			return err
		}
		noteState(t, seen, start, s)
		if s.State == "trying" {
			tryLog = v.serviceLog("/user/osgated")
		}
		if strings.HasPrefix(s.Last, "rolled back") {
			t.Fatalf("v2 rolled back: %+v\nosgated's log during the try:\n%s\nserial console:\n%s", s, tail(tryLog, 8000), tail(v.serial.String(), 8000))
		}
		// After "confirmed" the agent's next check says "idle: v2.0.0
		// is current"; last keeps the outcome.
		if s.Last != "confirmed v2.0.0" || s.Running != "v2.0.0" {
			return fmt.Errorf("ota.status %s (%s), running %s", s.State, s.Text, s.Running)
		}
		return nil
	})
	step("v2: check to confirmed")
	logPhases(t, "v2", seen)
	if err := wantVersion(v.rpc, rpcKey, "v2.0.0"); err != nil {
		t.Fatal(err)
	}
	if n := len(ngx.requests(t, "/stable/root-")); n == 0 {
		t.Fatal("nginx served no root part")
	}

	// v2 survives a reboot: only a confirmed root does.
	before := startedAt(t, v.rpc, rpcKey)
	if code, body, err := v.webPost(t.Context(), "/reboot"); err != nil || code >= 400 {
		t.Fatalf("gokrazy /reboot: HTTP %d %v: %s", code, err, body)
	}
	v.eventually("v2 is back after a reboot", 5*time.Minute, func() error {
		s, err := gatewayStatusV(v.rpc, rpcKey)
		switch {
		case err != nil:
			return err
		case s.Started == before:
			return fmt.Errorf("still the process started at %s", before)
		case s.Version != "v2.0.0":
			return fmt.Errorf("version %s after the reboot, want v2.0.0", s.Version)
		}
		return nil
	})
	step("reboot v2 until the gateway answers")
	if s, err := getOTAStatus(v.rpc, rpcKey); err != nil || s.Last != "confirmed v2.0.0" || s.Running != "v2.0.0" {
		t.Fatalf("ota.status after the reboot: %+v %v, want confirmed, running v2.0.0", s, err)
	}

	// v3: unhealthy, tried, rolled back to v2 by itself.
	ngx.publish(t, v3, nil, nil)
	otaCheck(v.rpc, rpcKey)
	start = time.Now()
	seen = map[string]time.Duration{}
	var rolled otaStatus
	v.eventually("v3 is tried and rolled back to v2", 15*time.Minute, func() error {
		s, err := getOTAStatus(v.rpc, rpcKey)
		if err != nil {
			return err
		}
		noteState(t, seen, start, s)
		// After "rolled back" the agent's next check refuses v3 ("failed
		// before"); last keeps the outcome.
		if !strings.HasPrefix(s.Last, "rolled back") || s.Running != "v2.0.0" {
			return fmt.Errorf("ota.status %s (%s), running %s", s.State, s.Text, s.Running)
		}
		rolled = s
		return nil
	})
	step("v3: check to rolled back")
	logPhases(t, "v3", seen)
	t.Logf("ota.status after the rollback: %+v", rolled)
	if _, ok := seen["trying"]; !ok {
		t.Logf("(the try of v3 was not seen over RPC: it rolled back within a poll)")
	}
	if why, ok := rolled.Failed["v3.0.0"]; !ok || !strings.Contains(rolled.Last, "unhealthy") {
		t.Fatalf("v3 not remembered as failed for unhealth: last %q, failed %v (%s)", rolled.Last, rolled.Failed, why)
	}
	if err := wantVersion(v.rpc, rpcKey, "v2.0.0"); err != nil {
		t.Fatal(err)
	}
	roots := len(ngx.requests(t, "/stable/root-"))
	v.eventually("v3 is not tried again (refused: failed before)", 3*time.Minute, func() error {
		otaCheck(v.rpc, rpcKey)
		s, err := getOTAStatus(v.rpc, rpcKey)
		if err == nil && (s.State != "refused" || !strings.Contains(s.Text, "failed before")) {
			err = fmt.Errorf("ota.status %s (%s)", s.State, s.Text)
		}
		return err
	})
	if n := len(ngx.requests(t, "/stable/root-")); n != roots {
		t.Fatalf("the failed v3's root was fetched again (%d requests, %d before)", n, roots)
	}

	// Refused before anything is written: a bad signature, then a
	// corrupted part. The disk's boot and inactive root partitions must
	// not change (qemu writes through to the file; the host reads it).
	sums := partitionSums(t, disk)
	ngx.publish(t, v4, func(manifest []byte) []byte { return sign.Sign(wrongKey, manifest) }, nil)
	start = time.Now()
	v.eventually("a release signed with another key is refused", 3*time.Minute, func() error {
		otaCheck(v.rpc, rpcKey)
		s, err := getOTAStatus(v.rpc, rpcKey)
		if err == nil && (s.State != "refused" || !strings.Contains(s.Text, "signature")) {
			err = fmt.Errorf("ota.status %s (%s)", s.State, s.Text)
		}
		return err
	})
	step("v4 with a bad signature: refused")
	if n := len(ngx.requests(t, "/stable/root-")); n != roots {
		t.Fatalf("a part was fetched for a release with a bad signature")
	}
	ngx.publish(t, v4, nil, func(name string, b []byte) []byte {
		if strings.HasPrefix(name, "root-") {
			b = bytes.Clone(b)
			for i := len(b) / 2; i < len(b)/2+64; i++ {
				b[i] ^= 0x5a
			}
		}
		return b
	})
	otaCheck(v.rpc, rpcKey)
	// No ota.check in the loop: a check would start the next download at
	// once and hide the error state.
	v.eventually("a release with a corrupted part is refused", 10*time.Minute, func() error {
		s, err := getOTAStatus(v.rpc, rpcKey)
		if err == nil && (s.State != "error" || !strings.Contains(s.Text, "does not match the manifest")) {
			err = fmt.Errorf("ota.status %s (%s)", s.State, s.Text)
		}
		return err
	})
	step("v4 with a corrupted root part: downloaded and refused")
	if after := partitionSums(t, disk); after != sums {
		t.Fatalf("the disk changed although the release was refused:\nbefore %s\nafter  %s", sums, after)
	}
	if err := wantVersion(v.rpc, rpcKey, "v2.0.0"); err != nil {
		t.Fatal(err)
	}
	if log := v.serviceLog("/user/osgated"); !strings.Contains(log, "refusing a corrupted part; nothing was written") {
		t.Fatalf("osgated's log does not show the refused part:\n%s", tail(log, 4000))
	}
}

// stepTimer logs how long each step took since the last one.
func stepTimer(t *testing.T) func(string) {
	last := time.Now()
	return func(what string) {
		t.Logf("TIMING %-60s %s", what, time.Since(last).Round(100*time.Millisecond))
		last = time.Now()
	}
}

// noteState records when ota.status first showed each state.
func noteState(t *testing.T, seen map[string]time.Duration, start time.Time, s otaStatus) {
	if _, ok := seen[s.State]; !ok {
		seen[s.State] = time.Since(start)
		t.Logf("ota.status after %s: %s (%s), running %s", time.Since(start).Round(100*time.Millisecond), s.State, s.Text, s.Running)
	}
}

func logPhases(t *testing.T, what string, seen map[string]time.Duration) {
	for _, st := range []string{"downloading", "writing", "rebooting", "trying", "rolling back", "confirmed", "rolled back"} {
		if d, ok := seen[st]; ok {
			t.Logf("TIMING %s: %-14s first seen %s after the check", what, st, d.Round(100*time.Millisecond))
		}
	}
}

type otaStatus struct {
	State   string            `json:"state"`
	Text    string            `json:"status"`
	Running string            `json:"running"`
	Target  string            `json:"target"`
	Last    string            `json:"last"`
	Failed  map[string]string `json:"failed"`
}

func getOTAStatus(port int, key string) (otaStatus, error) {
	var s otaStatus
	_, res, err := rpcCall(port, key, "ota.status", nil)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(res, &s)
}

// otaCheck asks for a check now; the agent may be busy (its own timer's
// check, an update under way), which the caller's polling covers.
func otaCheck(port int, key string) { rpcCall(port, key, "ota.check", nil) }

type versionStatus struct {
	Version string `json:"version"`
	Started string `json:"started"`
}

func gatewayStatusV(port int, key string) (versionStatus, error) {
	var s versionStatus
	_, res, err := rpcCall(port, key, "gateway.status", nil)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(res, &s)
}

func wantVersion(port int, key, want string) error {
	s, err := gatewayStatusV(port, key)
	if err == nil && s.Version != want {
		err = fmt.Errorf("gateway.status version %s, want %s", s.Version, want)
	}
	return err
}

func startedAt(t *testing.T, port int, key string) string {
	s, err := gatewayStatusV(port, key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Started
}

// otaInstance is a gokrazy instance folder for the OTA test: the amd64
// test instance's packages and build dir, plus /etc/osgate/ota.json, the
// version set at build time, and for an unhealthy build a baked-in config
// that osgate is started on.
type otaInstance struct {
	dir, repo string
}

func newOTAInstance(t *testing.T, repo, work string) *otaInstance {
	in := &otaInstance{dir: filepath.Join(work, "instance", "osgate-ota"), repo: repo}
	src := filepath.Join(repo, "image/amd64/builddir")
	// Copy the build dir, making its replace directives absolute (they
	// are relative to the go.mod files' own folders).
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if filepath.Base(path) == "go.mod" {
			var out []string
			for _, l := range strings.Split(string(b), "\n") {
				if before, after, ok := strings.Cut(l, "=> "); ok && strings.HasPrefix(after, ".") {
					l = before + "=> " + filepath.Clean(filepath.Join(filepath.Dir(path), strings.TrimSpace(after)))
				}
				out = append(out, l)
			}
			b = []byte(strings.Join(out, "\n"))
		}
		dst := filepath.Join(in.dir, "builddir", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the amd64 build dir: %v", err)
	}
	return in
}

// write makes the instance's config.json for one build.
func (in *otaInstance) write(t *testing.T, version string, otaJSON, unhealthy []byte) {
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(in.repo, "image/amd64/config.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &cfg))
	pc := cfg["PackageConfig"].(map[string]any)
	osgate := pc["github.com/osgate/osgate/appliance/cmd/osgate"].(map[string]any)
	osgate["GoBuildFlags"] = []string{"-ldflags=-X github.com/osgate/osgate/appliance.Version=" + version}
	osgated := pc["github.com/osgate/osgate/image/cmd/osgated"].(map[string]any)
	osgated["ExtraFilePaths"] = map[string]string{
		"/usr/local/bin/mosquitto": filepath.Join(in.repo, "image/build/mosquitto.amd64"),
	}
	files := map[string]string{"/etc/osgate/ota.json": string(otaJSON)}
	delete(osgated, "CommandLineFlags")
	if unhealthy != nil {
		// osgated passes its flags on to `osgate run`; the last -c wins.
		files["/etc/osgate/unhealthy.json"] = string(unhealthy)
		osgated["CommandLineFlags"] = []string{"-c", "/etc/osgate/unhealthy.json"}
	}
	osgated["ExtraFileContents"] = files
	out, err := json.MarshalIndent(cfg, "", "    ")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(in.dir, "config.json"), out, 0o644))
}

// releaseServer is nginx on the host's loopback serving www; the guest
// reaches it as 10.0.2.2:port.
type releaseServer struct {
	*testpeer.Nginx
	www       string
	port      int
	published int
}

func startReleaseServer(t *testing.T, www string) *releaseServer {
	n := testpeer.StartNginx(t, testpeer.NginxOptions{Root: www})
	_, port, err := net.SplitHostPort(n.Addr())
	must(t, err)
	s := &releaseServer{Nginx: n, www: www}
	s.port, err = strconv.Atoi(port)
	must(t, err)
	t.Logf("nginx serves %s on %s", www, n.Addr())
	return s
}

// publish copies a release into the stable channel: the parts first (each
// through part, which may corrupt it), then the signature (sign, when set,
// replaces it), then manifest.json by rename, with an mtime of its own so
// that nginx's ETag changes with every publication.
func (s *releaseServer) publish(t *testing.T, dir string, sign func([]byte) []byte, part func(string, []byte) []byte) {
	t.Helper()
	dst := filepath.Join(s.www, "stable")
	ents, err := os.ReadDir(dir)
	must(t, err)
	put := func(name string, b []byte) {
		tmp := filepath.Join(dst, "."+name+".tmp")
		must(t, os.WriteFile(tmp, b, 0o644))
		must(t, os.Rename(tmp, filepath.Join(dst, name)))
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "manifest.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		if part != nil {
			b = part(e.Name(), b)
		}
		put(e.Name(), b)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	must(t, err)
	sig, err := os.ReadFile(filepath.Join(dir, "manifest.json.sig"))
	must(t, err)
	if sign != nil {
		sig = sign(manifest)
	}
	put("manifest.json.sig", sig)
	put("manifest.json", manifest)
	s.published++
	mt := time.Date(2026, 1, 1, 0, 0, s.published, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(dst, "manifest.json"), mt, mt))
	t.Logf("published %s on the stable channel", filepath.Base(dir))
}

// requests returns nginx's access log lines whose path contains substr.
func (s *releaseServer) requests(t *testing.T, substr string) []string {
	return s.AccessLog(substr)
}

// partitionSums hashes the disk's boot partition and both roots (the
// inactive one is where an update would write).
func partitionSums(t *testing.T, disk string) string {
	ps, err := partitions(disk)
	must(t, err)
	f, err := os.Open(disk)
	must(t, err)
	defer f.Close()
	var sums []string
	for i, p := range ps[:3] {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, p.Start, p.Size)); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fmt.Sprintf("p%d=%s", i+1, hex.EncodeToString(h.Sum(nil))[:16]))
	}
	return strings.Join(sums, " ")
}

func keygen(t *testing.T, osgate, file string) string {
	out := run(t, filepath.Dir(file), nil, osgate, "release", "keygen", file)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "public_key: "); ok {
			return v
		}
	}
	t.Fatalf("osgate release keygen printed no public_key:\n%s", out)
	return ""
}

func readPrivateKey(t *testing.T, file string) ed25519.PrivateKey {
	b, err := os.ReadFile(file)
	must(t, err)
	k, err := sign.ParsePrivateKey(strings.TrimSpace(string(b)))
	must(t, err)
	return k
}

// run runs a command and returns its output; it fails the test on error.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(string(out), 6000))
	}
	t.Logf("%s %s (%s)", filepath.Base(name), strings.Join(args[:min(len(args), 2)], " "), time.Since(start).Round(100*time.Millisecond))
	return string(out)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
