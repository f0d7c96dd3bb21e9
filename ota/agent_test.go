package ota

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/scope"
)

// publish builds a release of version from a .gaf made in the test and
// copies it into the served channel directory, manifest last.
func publish(t *testing.T, priv ed25519.PrivateKey, serveDir, channel, version string, kernel uint64) *Manifest {
	t.Helper()
	tmp := t.TempDir()
	gaf := filepath.Join(tmp, version+".gaf")
	writeGAF(t, gaf, gafParts(version, kernel))
	out := filepath.Join(tmp, "release")
	m, _, err := Build(BuildOptions{Key: priv, Version: version, Channel: "stable", Out: out, GAF: gaf})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(serveDir, channel)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, out)
	for _, last := range []bool{false, true} {
		for _, n := range names {
			if strings.HasPrefix(n, "manifest") == last {
				if err := os.WriteFile(filepath.Join(dst, n), mustRead(t, out, n), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return m
}

// rig runs the agent on a fake device, boot after boot, from one state
// directory (the device's /perm).
type rig struct {
	t      *testing.T
	dev    *fakeDevice
	state  string
	url    string
	pub    ed25519.PublicKey
	unwell map[string]bool // versions whose health is Unhealthy
	// degraded: versions whose health is Degraded, with these reasons
	degraded map[string][]string
	// confirmTimeout: the agent's (default 20 s)
	confirmTimeout time.Duration
	gateway        string   // the gateway id (its cohort)
	cutAt          int      // cut the power at this step (0: never)
	cutOn          string   // or at the first step of this name
	steps          []string // every step seen, over all boots
	outcome        []string // how each boot ended: cut, reboot, settled
}

func newRig(t *testing.T, url string, pub ed25519.PublicKey) *rig {
	return &rig{t: t, dev: newFakeDevice(), state: t.TempDir(), url: url, pub: pub, unwell: map[string]bool{},
		degraded: map[string][]string{}, confirmTimeout: 20 * time.Second}
}

// boot runs one agent until it reboots the device, the power is cut, or
// it settles (a final state, or idle after its check); it returns the
// agent and how the boot ended.
func (r *rig) boot() (*Agent, string) {
	r.t.Helper()
	running := r.dev.version()
	a, err := New(Options{
		URL: r.url, Channel: "stable", PublicKey: r.pub, Running: running, Gateway: r.gateway, StateDir: r.state, Updater: r.dev,
		Health: func() health.Report {
			if r.unwell[running] {
				return health.Report{Status: health.Unhealthy, Reasons: []string{"export broker unreachable for 2m0s"}}
			}
			if why, ok := r.degraded[running]; ok {
				return health.Report{Status: health.Degraded, Reasons: why}
			}
			return health.Report{Status: health.OK}
		},
		ConfirmAfter: 150 * time.Millisecond, ConfirmTimeout: r.confirmTimeout, Interval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	a.firstCheck = 0
	ended := make(chan string, 1)
	var mu sync.Mutex
	hook := func(step string) {
		if step == "wait" {
			// Run waits for its next check: settled once it has checked,
			// or stopped on an error (the next try is a back-off away).
			if s := a.Status(); s.Checked != "" || s.State == "error" {
				ended <- "settled"
				runtime.Goexit()
			}
			return
		}
		mu.Lock()
		r.steps = append(r.steps, step)
		n := len(r.steps)
		mu.Unlock()
		switch {
		case r.cutAt > 0 && n == r.cutAt || r.cutOn != "" && step == r.cutOn:
			ended <- "cut"
			runtime.Goexit() // the power is gone: nothing after this step happens
		case step == "down":
			ended <- "reboot"
			runtime.Goexit()
		}
	}
	a.hook = hook
	r.dev.mu.Lock()
	r.dev.hook = hook
	r.dev.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	select {
	case how := <-ended:
		r.outcome = append(r.outcome, how)
		return a, how
	case <-time.After(60 * time.Second):
		r.t.Fatalf("agent did not settle in 60s: %+v; steps %v", a.Status(), r.steps)
	}
	return nil, ""
}

// run boots until the agent settles; after a cut or a reboot the device
// powers on the way gokrazy boots.
func (r *rig) run() *Agent {
	r.t.Helper()
	for range 12 {
		a, how := r.boot()
		if how == "settled" {
			return a
		}
		if err := r.dev.powerOn(); err != nil {
			r.t.Fatalf("device does not boot after %s: %v; steps %v", how, err, r.steps)
		}
	}
	r.t.Fatalf("no end after 12 boots: %v; steps %v", r.outcome, r.steps)
	return nil
}

// metricValue reads a counter from the registry /metrics serves; label
// is the value of its one label ("" for none).
func metricValue(t *testing.T, name, label string) float64 {
	t.Helper()
	var v float64
	if label == "" {
		v, _ = metrics.Registry.Value(name)
	} else {
		v, _ = metrics.Registry.Value(name, label)
	}
	return v
}

func serve(t *testing.T) (dir string, s *server) {
	dir = t.TempDir()
	return dir, startNginx(t, dir)
}

func TestAgentConfirmsGoodRelease(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	m := publish(t, priv, dir, "stable", "v2.0.0", 2)
	r := newRig(t, srv.url("stable"), pub)
	confirmed0 := metricValue(t, "osgate_ota_updates_total", "confirmed")
	bytes0 := metricValue(t, "osgate_ota_download_bytes_total", "")
	a := r.run()
	if d := metricValue(t, "osgate_ota_updates_total", "confirmed") - confirmed0; d != 1 {
		t.Errorf("osgate_ota_updates_total{outcome=confirmed} grew by %v, want 1", d)
	}
	var files int64
	for _, p := range m.Parts {
		files += p.FileSize
	}
	if d := metricValue(t, "osgate_ota_download_bytes_total", "") - bytes0; d != float64(files) {
		t.Errorf("osgate_ota_download_bytes_total grew by %v, want %d", d, files)
	}
	if s := a.Status(); s.Last != "confirmed v2.0.0" || s.Running != "v2.0.0" || s.Target != "" {
		t.Fatalf("status = %+v; boots %v", s, r.outcome)
	}
	if got := strings.Join(r.outcome, ","); got != "reboot,settled" {
		t.Fatalf("boots ended %s, want reboot,settled (write, then try and confirm)", got)
	}
	if r.dev.wroteRunning {
		t.Fatal("the running root was overwritten")
	}
	if got := strings.Join(r.dev.puts, ","); got != "root,boot,mbr" {
		t.Fatalf("writes %s, want root,boot,mbr in that order", got)
	}
	// The try boot's command line was the old root plus the flag; the
	// confirmation pointed root= at the new one.
	part, line := r.dev.bootRoot()
	if part != 3 || strings.Contains(line, tryFlag) {
		t.Fatalf("boot partition after confirming: root partition %d, %q", part, line)
	}
	// The boot partition holds the new boot image but for its command lines.
	boot, want := r.dev.bootBytes(), bootImage(2)
	for _, e := range m.Parts[Boot].Cmdline {
		copy(boot[e.Offset:e.Offset+e.Length], want[e.Offset:e.Offset+e.Length])
	}
	if !bytes.Equal(boot, want) {
		t.Fatal("boot partition is not the release's boot image")
	}
	if !bytes.Equal(r.dev.mbr, mbrImage(2)) {
		t.Fatal("MBR not written")
	}
	// Confirmed means it survives a reboot.
	if err := r.dev.powerOn(); err != nil || r.dev.version() != "v2.0.0" {
		t.Fatalf("after another reboot: %v, running %s", err, r.dev.version())
	}
	if _, err := os.Stat(filepath.Join(r.state, "ota", "parts")); !os.IsNotExist(err) {
		t.Fatalf("downloaded parts left behind: %v", err)
	}
	// Checking again: current, nothing written.
	puts := r.dev.putCount()
	a = r.run()
	if s := a.Status(); s.State != "idle" || !strings.Contains(s.Text, "v2.0.0 is current") || r.dev.putCount() != puts {
		t.Fatalf("second check: %+v, %d writes", s, r.dev.putCount()-puts)
	}
}

func TestAgentRollsBackUnhealthyRelease(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v3.0.0", 3)
	r := newRig(t, srv.url("stable"), pub)
	r.unwell["v3.0.0"] = true
	a := r.run()
	s := a.Status()
	if !strings.HasPrefix(s.Last, "rolled back: unhealthy: export broker unreachable") || s.Running != "v1.0.0" {
		t.Fatalf("status = %+v; boots %v", s, r.outcome)
	}
	if got := strings.Join(r.outcome, ","); got != "reboot,reboot,settled" {
		t.Fatalf("boots ended %s, want reboot (try), reboot (roll back), settled", got)
	}
	if _, failed := s.Failed["v3.0.0"]; !failed {
		t.Fatalf("v3.0.0 not remembered as failed: %+v", s.Failed)
	}
	if part, line := r.dev.bootRoot(); part != 2 || strings.Contains(line, tryFlag) {
		t.Fatalf("boot partition after the rollback: root partition %d, %q", part, line)
	}
	// Not retried, not even after a restart.
	puts := r.dev.putCount()
	a = r.run()
	if s := a.Status(); s.State != "refused" || !strings.Contains(s.Text, "v3.0.0 failed before") || r.dev.putCount() != puts {
		t.Fatalf("retry: %+v, %d writes", s, r.dev.putCount()-puts)
	}
	// A newer, healthy release is taken.
	publish(t, priv, dir, "stable", "v4.0.0", 4)
	if a = r.run(); a.Status().Last != "confirmed v4.0.0" || r.dev.version() != "v4.0.0" {
		t.Fatalf("v4 after a failed v3: %+v", a.Status())
	}
}

// TestAgentJudgesDegradedAgainstBefore: a release is not blamed for what
// was wrong before it (a meter offline before the update is offline after
// it): degraded counts as healthy when the running version was as
// degraded when the update began; more reasons than before roll it back.
func TestAgentJudgesDegradedAgainstBefore(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)
	r := newRig(t, srv.url("stable"), pub)
	r.confirmTimeout = 2 * time.Second
	offline := []string{"device meter-7 offline since 2026-11-25T13:02:11Z: timeout"}
	r.degraded["v1.0.0"] = offline
	r.degraded["v2.0.0"] = offline
	if a := r.run(); a.Status().Last != "confirmed v2.0.0" || r.dev.version() != "v2.0.0" {
		t.Fatalf("as degraded as before: %+v; boots %v", a.Status(), r.outcome)
	}
	if err := r.dev.powerOn(); err != nil || r.dev.version() != "v2.0.0" {
		t.Fatalf("v2 after a reboot: %v, running %s", err, r.dev.version())
	}
	publish(t, priv, dir, "stable", "v3.0.0", 3)
	r.degraded["v3.0.0"] = append(offline, "connector rs485 failing")
	a := r.run()
	if s := a.Status(); !strings.HasPrefix(s.Last, "rolled back: not healthy") || r.dev.version() != "v2.0.0" {
		t.Fatalf("more degraded than before: %+v; boots %v", s, r.outcome)
	}
}

func TestAgentRollsBackCrashedTry(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)
	r := newRig(t, srv.url("stable"), pub)
	if _, how := r.boot(); how != "reboot" {
		t.Fatalf("first boot ended %s", how)
	}
	r.dev.powerOn()
	if r.dev.version() != "v2.0.0" {
		t.Fatalf("try boot runs %s", r.dev.version())
	}
	// The new system crashes (or the watchdog resets it) before it is
	// confirmed: the next boot is the old root.
	r.cutAt = len(r.steps) + 2
	if _, how := r.boot(); how != "cut" {
		t.Fatalf("try boot ended %s", how)
	}
	r.cutAt = 0
	r.dev.powerOn()
	a := r.run()
	if s := a.Status(); s.Running != "v1.0.0" || !strings.HasPrefix(s.Last, "rolled back: rebooted before confirmation") {
		t.Fatalf("status %+v", s)
	}
}

func TestAgentRollsBackCrashLoop(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)
	r := newRig(t, srv.url("stable"), pub)
	if _, how := r.boot(); how != "reboot" {
		t.Fatalf("first boot ended %s", how)
	}
	r.dev.powerOn()
	// The new osgate crashes soon after every start, and gokrazy restarts
	// it: no reboot, so no rollback by the boot loader.
	r.cutOn = "state trying"
	for i := range maxTryRestarts + 1 {
		if _, how := r.boot(); how != "cut" {
			t.Fatalf("start %d in the try ended %s", i, how)
		}
	}
	r.cutOn = ""
	a := r.run()
	if s := a.Status(); s.Running != "v1.0.0" || !strings.HasPrefix(s.Last, "rolled back: osgate restarted 4 times") {
		t.Fatalf("status %+v; boots %v", s, r.outcome)
	}
}

func TestAgentRefusesBadSignature(t *testing.T) {
	pub, priv := testKey(t)
	_, otherPriv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "wrongkey", "v2.0.0", 2)
	publish(t, otherPriv, dir, "wrongkey", "v2.0.0", 2) // same release signed by someone else
	publish(t, priv, dir, "unsigned", "v2.0.0", 2)
	os.Remove(filepath.Join(dir, "unsigned", "manifest.json.sig"))
	publish(t, priv, dir, "tampered", "v2.0.0", 2)
	mpath := filepath.Join(dir, "tampered", "manifest.json")
	os.WriteFile(mpath, bytes.Replace(mustRead(t, mpath), []byte(`"v2.0.0"`), []byte(`"v2.0.1"`), 1), 0o644)
	for channel, want := range map[string]string{
		"wrongkey": "signature does not match",
		"unsigned": "not signed",
		"tampered": "signature does not match",
	} {
		t.Run(channel, func(t *testing.T) {
			r := newRig(t, srv.url(channel), pub)
			a := r.run()
			if s := a.Status(); s.State != "refused" || !strings.Contains(s.Text, want) {
				t.Fatalf("status %+v, want refused: %s", s, want)
			}
			if r.dev.putCount() != 0 {
				t.Fatalf("wrote %v", r.dev.puts)
			}
			if n := len(srv.requests(t, "/"+channel+"/root-")); n != 0 {
				t.Fatalf("downloaded parts of a refused release (%d requests)", n)
			}
		})
	}
}

func TestAgentRefusesCorruptedPart(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	for _, part := range []string{Root, Boot} {
		t.Run(part, func(t *testing.T) {
			m := publish(t, priv, dir, "corrupt-"+part, "v2.0.0", 2)
			file := filepath.Join(dir, "corrupt-"+part, m.Parts[part].File)
			b := mustRead(t, file)
			b[len(b)/2] ^= 0x40
			os.WriteFile(file, b, 0o644)
			r := newRig(t, srv.url("corrupt-"+part), pub)
			a := r.run()
			if s := a.Status(); s.State != "error" || !strings.Contains(s.Text, "does not match the manifest") {
				t.Fatalf("status %+v", s)
			}
			// Every part is checked before the first write: a corrupted
			// boot part stops the root write too.
			if r.dev.putCount() != 0 {
				t.Fatalf("wrote %v", r.dev.puts)
			}
			if _, err := os.Stat(filepath.Join(r.state, "ota", "parts", m.Parts[part].File)); !os.IsNotExist(err) {
				t.Fatalf("the corrupted download was kept: %v", err)
			}
			if r.dev.version() != "v1.0.0" || len(a.Status().Failed) != 0 {
				t.Fatalf("running %s, failed %v", r.dev.version(), a.Status().Failed)
			}
			// Repaired on the server, the same release goes through.
			b[len(b)/2] ^= 0x40
			os.WriteFile(file, b, 0o644)
			if a = r.run(); a.Status().Last != "confirmed v2.0.0" {
				t.Fatalf("after the repair: %+v", a.Status())
			}
		})
	}
}

func TestAgentResumesDownload(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	m := publish(t, priv, dir, "stable", "v2.0.0", 2)
	root := m.Parts[Root].File
	r := newRig(t, srv.url("stable"), pub)
	r.cutOn = "download " + root // the power goes after the first chunk
	if _, how := r.boot(); how != "cut" {
		t.Fatalf("first boot ended %s", how)
	}
	partial, err := os.Stat(filepath.Join(r.state, "ota", "parts", root))
	if err != nil || partial.Size() == 0 || partial.Size() >= m.Parts[Root].FileSize {
		t.Fatalf("partial download: %v, %v", partial, err)
	}
	r.cutOn = ""
	if err := r.dev.powerOn(); err != nil || r.dev.version() != "v1.0.0" {
		t.Fatalf("after the cut: %v, running %s", err, r.dev.version())
	}
	if a := r.run(); a.Status().Last != "confirmed v2.0.0" {
		t.Fatalf("status %+v", a.Status())
	}
	reqs := srv.requests(t, "/stable/"+root)
	if len(reqs) != 2 || !strings.Contains(reqs[1], " 206 ") || !strings.Contains(reqs[1], `"bytes=`+strconv.FormatInt(partial.Size(), 10)+`-"`) {
		t.Fatalf("root requests %q, want a full one and a 206 from byte %d", reqs, partial.Size())
	}
}

func TestAgentMethods(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v1.0.0", 1) // what the device runs already
	dev := newFakeDevice()
	a, err := New(Options{URL: srv.url("stable"), Channel: "stable", PublicKey: pub, Running: dev.version(), StateDir: t.TempDir(),
		Updater: dev, Health: func() health.Report { return health.Report{Status: health.OK} }, Interval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m := a.Methods()
	if m["ota.check"].Scope != scope.Admin || m["ota.status"].Scope != scope.Read {
		t.Fatalf("scopes: ota.check %v, ota.status %v; want admin (it installs updates) and read", m["ota.check"].Scope, m["ota.status"].Scope)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Not running: ota.check says so instead of waiting.
	if _, err := m["ota.check"].Handler(ctx, nil); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("check without Run: %v", err)
	}
	a.firstCheck = time.Hour // only ota.check checks
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Run(runCtx) }()
	defer func() { stop(); <-done }()
	var res any
	for res == nil { // until Run waits for checks
		res, err = m["ota.check"].Handler(ctx, nil)
		if err != nil && !strings.Contains(err.Error(), "busy") {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("ota.check never answered")
		}
		if res == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if s := res.(Status); s.State != "idle" || s.Text != "idle: v1.0.0 is current" || s.Checked == "" {
		t.Fatalf("ota.check = %+v", s)
	}
	st, _ := m["ota.status"].Handler(ctx, nil)
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"state":"idle"`) || !strings.Contains(string(b), `"running":"v1.0.0"`) {
		t.Fatalf("ota.status = %s", b)
	}
}

func TestAgentNeedsHashingUpdateAPI(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)
	r := newRig(t, srv.url("stable"), pub)
	r.dev.features = "partuuid,"
	a := r.run()
	if s := a.Status(); s.State != "error" || !strings.Contains(s.Text, "not updatehash") || r.dev.putCount() != 0 {
		t.Fatalf("status %+v, writes %v", s, r.dev.puts)
	}
}

func TestAgentGivesUpAfterFailedWrites(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)
	r := newRig(t, srv.url("stable"), pub)
	r.dev.putErr = errors.New("HTTP 500: write /dev/mmcblk0p3: input/output error")
	for i := 1; i <= maxAttempts; i++ {
		a, how := r.boot() // each start takes the update up again at once
		if s := a.Status(); how != "settled" || s.State != "error" || !strings.Contains(s.Text, "input/output error") {
			t.Fatalf("attempt %d: %s, %+v", i, how, s)
		}
	}
	a, _ := r.boot()
	if s := a.Status(); !strings.HasPrefix(s.Last, "failed: gave up after 3") || s.Failed["v2.0.0"] == "" || r.dev.version() != "v1.0.0" {
		t.Fatalf("after %d failed writes: %+v", maxAttempts, s)
	}
}
