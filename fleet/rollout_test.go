package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/ota"
)

func TestShares(t *testing.T) {
	for _, c := range []struct {
		text       string
		of, allows int // of 20 gateways
		err        bool
	}{
		{"5%", 1, 1, false}, {"25%", 5, 5, false}, {"2%", 1, 0, false}, {"0%", 0, 0, false}, {"100%", 20, 20, false},
		{"7%", 2, 1, false}, {"3", 3, 3, false}, {"0", 0, 0, false}, {"30", 20, 30, false},
		{"101%", 0, 0, true}, {"-1", 0, 0, true}, {"x%", 0, 0, true}, {"NaN%", 0, 0, true}, {"", 0, 0, true},
	} {
		s, err := ParseShare(c.text)
		if (err != nil) != c.err {
			t.Errorf("ParseShare(%q): %v", c.text, err)
			continue
		}
		if err == nil && (s.Of(20) != c.of || s.Allowed(20) != c.allows || s.String() != c.text) {
			t.Errorf("%q of 20: %d (want %d), allows %d (want %d), reads %q", c.text, s.Of(20), c.of, s.Allowed(20), c.allows, s)
		}
	}
	if s, _ := ParseShare("7%"); s.Of(100) != 7 || s.Allowed(100) != 7 {
		t.Errorf("7%% of 100: %d, allows %d", s.Of(100), s.Allowed(100))
	}
}

// TestWantAt: the canary (at least one gateway), a step more each time,
// all at the last; a step of 0 goes from the canary to all.
func TestWantAt(t *testing.T) {
	share := func(s string) Share { v, _ := ParseShare(s); return v }
	for _, c := range []struct {
		canary, step string
		n            int
		want         string
	}{
		{"5%", "25%", 4, "1 2 3 4"},
		{"5%", "25%", 100, "5 30 55 80 100"},
		{"0%", "50%", 10, "1 6 10"},
		{"1", "1", 3, "1 2 3"},
		{"10%", "0", 50, "5 50"},
		{"100%", "25%", 7, "7"},
	} {
		p := &Plan{Canary: share(c.canary), Step: share(c.step)}
		var got []string
		for i := 0; ; i++ {
			w := wantAt(p, i, c.n)
			got = append(got, fmt.Sprint(w))
			if w >= c.n || i > 200 {
				break
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("canary %s step %s of %d: %s, want %s", c.canary, c.step, c.n, strings.Join(got, " "), c.want)
		}
	}
}

// TestStoreSerializes: commands updating the same channel at once lose
// none of each other's changes (the lock), and a damaged state file is
// an error that says what to do.
func TestStoreSerializes(t *testing.T) {
	st := Store{Dir: t.TempDir()}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if _, err := st.Update(func(p *Plan) (*Plan, error) {
					if p == nil {
						p = &Plan{Kind: "release"}
					}
					p.Steps = append(p.Steps, Step{})
					return p, nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	p, err := st.Load()
	if err != nil || p == nil || len(p.Steps) != 100 || p.Rev != 100 {
		t.Fatalf("after 100 updates: %v, %d steps", err, len(p.Steps))
	}
	if err := os.WriteFile(filepath.Join(st.Dir, PlanFile), []byte("{half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(); err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "move it aside") {
		t.Errorf("a damaged state file: %v", err)
	}
}

// makeRelease writes a release directory as `osgate release` makes it:
// one part and a manifest naming its hash (the signature is not checked
// by the fleet tool: the gateways check it).
func makeRelease(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	m := ota.Manifest{Version: version, Channel: "stable", CreatedAt: time.Now().UTC(), Parts: map[string]ota.Part{}}
	for name, text := range map[string]string{ota.Root: "root of " + version, ota.Boot: "console=tty1 root=PARTUUID=5a17c0de-02"} {
		data := []byte(text)
		sum := sha256.Sum256(data)
		file := name + "-" + hex.EncodeToString(sum[:8]) + ".img"
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
		p := ota.Part{File: file, Compression: "none", Sha256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			FileSha256: hex.EncodeToString(sum[:]), FileSize: int64(len(data))}
		if name == ota.Boot {
			p.Cmdline = []ota.Extent{{Offset: 0, Length: int64(len(data))}}
		}
		m.Parts[name] = p
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json.sig"), []byte("sig of "+version), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPublishParts: the release's part is copied into the channel; a part
// that does not match its manifest, or is nowhere, is refused and leaves
// nothing behind.
func TestPublishParts(t *testing.T) {
	rel, ch := makeRelease(t, "v2.0.0"), t.TempDir()
	m, _, _, err := readRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishParts(m, rel, ch); err != nil {
		t.Fatal(err)
	}
	file := m.Parts[ota.Root].File
	if b, err := os.ReadFile(filepath.Join(ch, file)); err != nil || string(b) != "root of v2.0.0" {
		t.Fatalf("published part: %q, %v", b, err)
	}
	if err := publishParts(m, rel, ch); err != nil {
		t.Errorf("again, with the part there: %v", err)
	}
	ch2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(rel, file), []byte("root of v2.0.X"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := publishParts(m, rel, ch2); err == nil || !strings.Contains(err.Error(), "does not match its manifest") {
		t.Errorf("a damaged part: %v", err)
	}
	os.Remove(filepath.Join(rel, file))
	if err := publishParts(m, rel, ch2); err == nil || !strings.Contains(err.Error(), "neither in the release directory nor in the channel's") {
		t.Errorf("a missing part: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ch2, file)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused part is in the channel: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(ch2, ".*")); len(left) != 0 {
		t.Errorf("refused parts left temporary files in the channel: %v", left)
	}
}

// simFleet stands in for gateways in the driver's tests: it gives the
// view each gateway's status document, and a gateway whose cohort's
// manifest names a release it does not run takes it up as its behaviour
// says: good (confirms it), bad (rolls back and names it failed) or
// silent (nothing). The documents are given to the view directly; the
// path through the cloud broker, with real gateways and nginx, is
// TestFleetRollout in appliance/cmd/osgate.
type simFleet struct {
	w       *Watch
	channel string
	mu      sync.Mutex
	gws     map[string]*simGW
}

type simGW struct {
	behaviour string
	doc       export.GatewayStatus
}

func newSimFleet(t *testing.T, channel, version string, gws map[string]string) *simFleet {
	f := &simFleet{w: newWatch(), channel: channel, gws: map[string]*simGW{}}
	for id, b := range gws {
		c := ota.CohortOf(id)
		g := &simGW{behaviour: b, doc: export.GatewayStatus{ID: id, State: "online", Version: version,
			OTA: &export.OTAStatus{State: "idle", Cohort: &c}}}
		f.gws[id] = g
		f.publish(g)
		f.w.receive(nil, message{topic: "status/" + id + "/bridge", payload: []byte("1")})
	}
	stepUntilCleanup(t, f.step)
	return f
}

func (f *simFleet) publish(g *simGW) {
	b, _ := json.Marshal(g.doc)
	f.w.receive(nil, message{topic: "status/" + g.doc.ID, payload: b, live: true})
}

func (f *simFleet) step() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.gws {
		b, err := os.ReadFile(filepath.Join(f.channel, ota.CohortFile(*g.doc.OTA.Cohort)))
		if err != nil {
			continue
		}
		m, err := ota.ParseManifest(b)
		if err != nil || m.Version == g.doc.Version || strings.Contains(strings.Join(g.doc.OTA.Failed, " "), m.Version) {
			continue
		}
		switch g.behaviour {
		case "good":
			g.doc.Version, g.doc.OTA.State, g.doc.OTA.Last = m.Version, "confirmed", "confirmed "+m.Version
		case "bad":
			g.doc.OTA.State, g.doc.OTA.Last = "rolled back", "rolled back: unhealthy: "+m.Version+" is bad"
			g.doc.OTA.Failed = append(g.doc.OTA.Failed, m.Version)
		default:
			continue
		}
		f.publish(g)
	}
}

// channelWith makes a channel directory whose every cohort and
// manifest.json name version (the release before the rollout).
func channelWith(t *testing.T, version string) string {
	t.Helper()
	ch := t.TempDir()
	rel := makeRelease(t, version)
	m, data, sig, err := readRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishParts(m, rel, ch); err != nil {
		t.Fatal(err)
	}
	for _, name := range releaseFiles(ota.Cohorts, true) {
		if err := writeManifestFile(ch, name, SavedFile{Manifest: data, Sig: sig}); err != nil {
			t.Fatal(err)
		}
	}
	return ch
}

// snapshot is every manifest file of a channel, by name.
func snapshot(t *testing.T, ch string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range releaseFiles(ota.Cohorts, true) {
		for _, n := range []string{name, name + ".sig"} {
			b, err := os.ReadFile(filepath.Join(ch, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = string(b)
		}
	}
	return out
}

func sameFiles(a, b map[string]string) string {
	for k, v := range a {
		if b[k] != v {
			return k
		}
	}
	return ""
}

// fleetOf is n gateways g-00… with one behaviour, and some exceptions.
func fleetOf(n int, behaviour string, except map[string]string) map[string]string {
	gws := map[string]string{}
	for i := range n {
		gws[fmt.Sprintf("g-%02d", i)] = behaviour
	}
	for id, b := range except {
		gws[id] = b
	}
	return gws
}

func startRollout(t *testing.T, ch, version, canary, step, maxFailures string, timeout time.Duration) {
	t.Helper()
	o := RolloutOptions{Release: makeRelease(t, version), Channel: ch, Selector: "all", StepTimeout: timeout}
	var err error
	for _, s := range []struct {
		text string
		to   *Share
	}{{canary, &o.Canary}, {step, &o.Step}, {maxFailures, &o.MaxFailures}} {
		if *s.to, err = ParseShare(s.text); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := StartRollout(o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

func drive(t *testing.T, ch string, w *Watch) (string, error) {
	t.Helper()
	var out bytes.Buffer
	r := NewRollout(ch, w, &out)
	r.Tick = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := r.Drive(ctx)
	return out.String(), err
}

// TestRolloutGood: 20 gateways, a good release: 5 steps (1, 6, 11, 16,
// 20 gateways), every cohort and manifest.json name it at the end.
func TestRolloutGood(t *testing.T) {
	ch := channelWith(t, "v1.0.0")
	f := newSimFleet(t, ch, "v1.0.0", fleetOf(20, "good", nil))
	startRollout(t, ch, "v2.0.0", "5%", "25%", "0", time.Minute)
	out, err := drive(t, ch, f.w)
	if err != nil || !strings.Contains(out, "rollout of v2.0.0 done: 20 gateways confirmed it") {
		t.Fatalf("%v\n%s", err, out)
	}
	p, _ := (Store{Dir: ch}).Load()
	var wants []string
	for _, s := range p.Steps {
		wants = append(wants, fmt.Sprint(s.Want))
	}
	if strings.Join(wants, " ") != "1 6 11 16 20" || p.State != Done || !p.Steps[len(p.Steps)-1].Final {
		t.Errorf("steps %v, %s", wants, p.State)
	}
	for name, data := range snapshot(t, ch) {
		if !strings.HasSuffix(name, ".sig") && !strings.Contains(data, `"v2.0.0"`) {
			t.Errorf("%s does not name v2.0.0 after the rollout", name)
		}
	}
}

// TestRolloutHalts: a bad canary halts at step 1, a step with more
// failures than allowed halts there, a step with as many as allowed
// passes; a gateway silent for the step timeout fails; every halt puts
// back each manifest byte for byte.
func TestRolloutHalts(t *testing.T) {
	for _, c := range []struct {
		name, maxFailures string
		gws               map[string]string
		halt              string // "" done
	}{
		{"bad canary", "2%", fleetOf(20, "bad", nil), "step 1: 1 of 1 gateways failed, more than the 0 allowed (--max-failures 2%)"},
		{"one failure allowed", "1", fleetOf(20, "good", map[string]string{"g-07": "bad"}), ""},
		{"two failures, one allowed", "1", fleetOf(20, "good", map[string]string{"g-07": "bad", "g-08": "bad", "g-09": "bad", "g-10": "bad"}), "gateways failed, more than the 1 allowed (--max-failures 1)"},
		{"silent", "0", fleetOf(20, "good", map[string]string{"g-03": "silent"}), "g-03: not confirmed on v2.0.0 within the step timeout 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := channelWith(t, "v1.0.0")
			before := snapshot(t, ch)
			f := newSimFleet(t, ch, "v1.0.0", c.gws)
			startRollout(t, ch, "v2.0.0", "5%", "50%", c.maxFailures, time.Second)
			out, err := drive(t, ch, f.w)
			p, _ := (Store{Dir: ch}).Load()
			if c.halt == "" {
				if err != nil || p.State != Done {
					t.Fatalf("%v, %s\n%s", err, p.State, out)
				}
				return
			}
			if !errors.Is(err, ErrHalted) || !strings.Contains(err.Error(), c.halt) || p.State != Halted {
				t.Fatalf("%v, %s; want halted: %s\n%s", err, p.State, c.halt, out)
			}
			if k := sameFiles(before, snapshot(t, ch)); k != "" {
				t.Errorf("%s is not as it was before the rollout", k)
			}
		})
	}
}

// TestRolloutOperators: a second command on the same channel sees the
// rollout: it cannot drive it while the first does, a pause stops the
// driver after its step, a resume continues from the state file, an
// abort stops it and puts the manifests back; a new release waits until
// the rollout under way ends.
func TestRolloutOperators(t *testing.T) {
	ch := channelWith(t, "v1.0.0")
	before := snapshot(t, ch)
	f := newSimFleet(t, ch, "v1.0.0", fleetOf(20, "good", map[string]string{"g-00": "silent", "g-01": "silent", "g-02": "silent",
		"g-03": "silent", "g-04": "silent", "g-05": "silent", "g-06": "silent", "g-07": "silent"}))
	startRollout(t, ch, "v2.0.0", "5%", "25%", "0", time.Minute)
	o := RolloutOptions{Release: makeRelease(t, "v3.0.0"), Channel: ch, Selector: "all", StepTimeout: time.Minute}
	if _, err := StartRollout(o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "a rollout of v2.0.0 is running") {
		t.Errorf("another release during the rollout: %v", err)
	}

	type result struct {
		err error
		out string
	}
	run := func() chan result {
		c := make(chan result, 1)
		go func() { out, err := drive(t, ch, f.w); c <- result{err, out} }()
		return c
	}
	waitPending := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			p, _ := (Store{Dir: ch}).Load()
			if p != nil && p.Driver != nil && len(p.Steps) > 0 {
				s := p.Steps[len(p.Steps)-1]
				for _, id := range s.Gateways {
					if s.Applied && f.gws[id].behaviour == "silent" {
						return // a step that waits for good
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no step waiting for a silent gateway: %+v", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	first := run()
	waitPending()

	// A second driver (another process) is refused while the first runs.
	other := NewRollout(ch, f.w, &bytes.Buffer{})
	other.me.PID = os.Getppid()
	if err := other.Drive(context.Background()); err == nil || !strings.Contains(err.Error(), "is driven by process") {
		t.Errorf("a second driver: %v", err)
	}

	if _, err := Pause(ch, "night shift"); err != nil {
		t.Fatal(err)
	}
	r := <-first
	if r.err != nil || !strings.Contains(r.out, "paused (paused by") || !strings.Contains(r.out, "night shift") {
		t.Fatalf("paused driver: %v\n%s", r.err, r.out)
	}
	p, _ := (Store{Dir: ch}).Load()
	steps := len(p.Steps)
	if _, err := drive(t, ch, f.w); err == nil || !strings.Contains(err.Error(), "is paused") {
		t.Errorf("driving a paused rollout: %v", err)
	}

	// Resumed: it goes on from the same step, which waits again.
	if _, err := Resume(ch); err != nil {
		t.Fatal(err)
	}
	second := run()
	waitPending()
	if p, _ := (Store{Dir: ch}).Load(); len(p.Steps) != steps || p.State != Running {
		t.Errorf("resumed at %d steps (%s), paused at %d", len(p.Steps), p.State, steps)
	}
	if _, err := Abort(ch, "wrong release"); err != nil {
		t.Fatal(err)
	}
	r = <-second
	if !errors.Is(r.err, ErrAborted) || !strings.Contains(r.err.Error(), "wrong release") {
		t.Errorf("aborted driver: %v\n%s", r.err, r.out)
	}
	if k := sameFiles(before, snapshot(t, ch)); k != "" {
		t.Errorf("%s is not as it was before the aborted rollout", k)
	}
	if _, err := Abort(ch, ""); err == nil || !strings.Contains(err.Error(), "is aborted") {
		t.Errorf("abort again: %v", err)
	}
	if _, err := StartRollout(o, &bytes.Buffer{}); err != nil {
		t.Errorf("a new release after the abort: %v", err)
	}
}

// TestManifestFileNewSecond: a manifest replaced within the second of its
// previous version gets a later modification time, so that a static
// server's ETag (nginx: time in seconds and size) changes with it.
func TestManifestFileNewSecond(t *testing.T) {
	dir := t.TempDir()
	var last int64
	for i := range 3 {
		f := SavedFile{Manifest: []byte(fmt.Sprintf(`{"version":"v%d.0.0"}`, i)), Sig: []byte("sig")}
		if err := writeManifestFile(dir, "cohort-00.json", f); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"cohort-00.json", "cohort-00.json.sig"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if name == "cohort-00.json" {
				if i > 0 && fi.ModTime().Unix() <= last {
					t.Errorf("write %d: %s has the time %d of the previous version", i, name, fi.ModTime().Unix())
				}
				last = fi.ModTime().Unix()
			}
		}
	}
}

// TestJudgeRelease: what counts as done, failed and still on the way.
func TestJudgeRelease(t *testing.T) {
	c := 7
	doc := func(state, version string, o *export.OTAStatus) Gateway {
		if o != nil {
			o.Cohort = &c
		}
		return Gateway{ID: "gw-1", Bridge: "1", Doc: export.GatewayStatus{State: state, Version: version, OTA: o}}
	}
	for _, k := range []struct {
		name string
		g    Gateway
		want string
	}{
		{"confirmed", doc("online", "v2", &export.OTAStatus{State: "confirmed", Last: "confirmed v2"}), outDone},
		{"idle on it", doc("online", "v2", &export.OTAStatus{State: "idle"}), outDone},
		{"confirmed, then offline", doc("offline", "v2", &export.OTAStatus{State: "confirmed", Last: "confirmed v2"}), outDone},
		{"offline on it, unconfirmed", doc("offline", "v2", &export.OTAStatus{State: "idle"}), outPending},
		{"trying", doc("online", "v2", &export.OTAStatus{State: "trying", Target: "v2"}), outPending},
		{"rebooting", doc("offline", "v1", &export.OTAStatus{State: "rebooting", Target: "v2"}), outPending},
		{"downloading", doc("online", "v1", &export.OTAStatus{State: "downloading", Target: "v2"}), outPending},
		{"error during the update", doc("online", "v1", &export.OTAStatus{State: "error", Target: "v2"}), outPending},
		{"not yet", doc("online", "v1", &export.OTAStatus{State: "idle"}), outPending},
		{"rolled back", doc("online", "v1", &export.OTAStatus{State: "rolled back", Last: "rolled back: unhealthy", Failed: []string{"v2"}}), outFailed},
		{"refused", doc("online", "v1", &export.OTAStatus{State: "refused", Status: "refused: v2 needs at least v1.5"}), outFailed},
		{"refused another", doc("online", "v1", &export.OTAStatus{State: "refused", Status: "refused: v3 failed before"}), outPending},
		{"no agent", doc("online", "v1", nil), outPending},
	} {
		if got, why := judgeRelease("v2", k.g); got != k.want {
			t.Errorf("%s: %s (%s), want %s", k.name, got, why, k.want)
		}
	}
}

// TestStartRolloutChecks: a release for another channel than the one
// the directory publishes, or the one it already publishes, is refused.
func TestStartRolloutChecks(t *testing.T) {
	ch := channelWith(t, "v1.0.0")
	o := RolloutOptions{Release: makeRelease(t, "v1.0.0"), Channel: ch, Selector: "all", StepTimeout: time.Minute}
	if _, err := StartRollout(o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "already publishes v1.0.0") {
		t.Errorf("the published release again: %v", err)
	}
	o.Release = makeRelease(t, "v2.0.0")
	b, _ := os.ReadFile(filepath.Join(o.Release, "manifest.json"))
	if err := os.WriteFile(filepath.Join(o.Release, "manifest.json"), bytes.Replace(b, []byte(`"stable"`), []byte(`"beta"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := StartRollout(o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `the release is for channel "beta"`) {
		t.Errorf("a release of another channel: %v", err)
	}
	o.Selector = "seen<soon"
	if _, err := StartRollout(o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "selector") {
		t.Errorf("a bad selector: %v", err)
	}
}

// TestRolloutNobodyOnline: a step that finds no online gateway to take
// part stops the driver with what to check, and leaves the rollout to be
// resumed by anyone at once.
func TestRolloutNobodyOnline(t *testing.T) {
	ch := channelWith(t, "v1.0.0")
	f := newSimFleet(t, ch, "v1.0.0", map[string]string{})
	startRollout(t, ch, "v2.0.0", "5%", "25%", "0", time.Minute)
	_, err := drive(t, ch, f.w)
	if err == nil || !strings.Contains(err.Error(), "no online gateway follows the channel") || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("a fleet of none: %v", err)
	}
	p, _ := (Store{Dir: ch}).Load()
	if p.State != Running || p.Driver != nil || len(p.Steps) != 0 {
		t.Errorf("after the error: %s, driver %+v, %d steps", p.State, p.Driver, len(p.Steps))
	}
}

// TestRolloutStopped: a driver whose context ends (Ctrl-C) says how to go
// on and gives the rollout up, so another command drives it at once.
func TestRolloutStopped(t *testing.T) {
	ch := channelWith(t, "v1.0.0")
	f := newSimFleet(t, ch, "v1.0.0", fleetOf(4, "silent", nil))
	startRollout(t, ch, "v2.0.0", "1", "1", "0", time.Minute)
	r := NewRollout(ch, f.w, &bytes.Buffer{})
	r.Tick = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Drive(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, _ := (Store{Dir: ch}).Load()
		if p != nil && len(p.Steps) > 0 && p.Steps[0].Applied {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first step was not published")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "`osgate fleet rollout resume` continues it") {
		t.Errorf("stopped driver: %v", err)
	}
	p, _ := (Store{Dir: ch}).Load()
	if p.State != Running || p.Driver != nil {
		t.Errorf("after the stop: %s, driver %+v", p.State, p.Driver)
	}
	other := NewRollout(ch, f.w, &bytes.Buffer{})
	other.me.PID = os.Getppid()
	f.mu.Lock()
	for _, g := range f.gws {
		g.behaviour = "good"
	}
	f.mu.Unlock()
	if out, err := drive2(other); err != nil || !strings.Contains(out, "done: 4 gateways confirmed it") {
		t.Errorf("another command after the stop: %v\n%s", err, out)
	}
}

func drive2(r *Rollout) (string, error) {
	var out bytes.Buffer
	r.out, r.Tick = &out, 10*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := r.Drive(ctx)
	return out.String(), err
}

// stepUntilCleanup runs step every 10 ms, as a simulated fleet moves on,
// until the test ends.
func stepUntilCleanup(t *testing.T, step func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			step()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}
