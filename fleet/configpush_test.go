package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/ota"
)

// cfgFleet stands in for gateways that pull {id}.json from a directory,
// as config/source and the supervisor do: a document whose signature
// checks out is taken as its behaviour says: good (on trial for a moment,
// then confirmed), bad (on trial, then, for the pushed document cfgDoc,
// rolled back: rejected and marked bad, the previous one runs again), trial (on trial for ever), refuse
// (refused as invalid). The path through the cloud broker, with real
// gateways and nginx, is TestFleetConfigPush in appliance/cmd/osgate.
type cfgFleet struct {
	w   *Watch
	dir string
	pub ed25519.PublicKey
	mu  sync.Mutex
	gws map[string]*cfgGW
}

type cfgGW struct {
	behaviour string
	doc       export.GatewayStatus
	prev      string
	trialEnd  time.Time
	pushed    bool // the document on trial is the pushed one (cfgDoc)
}

func newCfgFleet(t *testing.T, dir string, pub ed25519.PublicKey, gws map[string]string) *cfgFleet {
	f := &cfgFleet{w: newWatch(), dir: dir, pub: pub, gws: map[string]*cfgGW{}}
	for id, b := range gws {
		g := &cfgGW{behaviour: b, doc: export.GatewayStatus{ID: id, State: "online", Version: "v1",
			Config: &export.ConfigStatus{Version: "local", Origin: "local"}}}
		f.gws[id] = g
		f.publish(g)
	}
	stepUntilCleanup(t, f.step)
	return f
}

func (f *cfgFleet) publish(g *cfgGW) {
	b, _ := json.Marshal(g.doc)
	f.w.receive(nil, message{topic: "status/" + g.doc.ID, payload: b, live: true})
}

func (f *cfgFleet) step() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, g := range f.gws {
		c := g.doc.Config
		if c.Trial {
			if g.behaviour == "trial" || time.Now().Before(g.trialEnd) {
				continue
			}
			c.Trial = false
			if g.behaviour == "bad" && g.pushed {
				c.Rejected = &export.RejectedConfig{Version: c.Version, Reason: "unhealthy for 2m0s: every connector is failing"}
				c.Bad = append(c.Bad, c.Version)
				c.Version = g.prev
			}
			f.publish(g)
			continue
		}
		doc, err := os.ReadFile(filepath.Join(f.dir, id+".json"))
		if err != nil {
			continue
		}
		v := shortVersion(doc)
		if v == c.Version || slices.Contains(c.Bad, v) {
			continue
		}
		sig, _ := os.ReadFile(filepath.Join(f.dir, id+".json.sig"))
		switch {
		case sign.Verify(f.pub, doc, sig) != nil:
			c.Error = "config version " + v + " refused: bad signature"
		case g.behaviour == "refuse":
			c.Error = "config version " + v + " from http://fleet/" + id + ".json refused: invalid: connectors[0].type: unknown"
		default:
			g.prev, c.Version, c.Trial, c.Error = c.Version, v, true, ""
			g.trialEnd = time.Now().Add(50 * time.Millisecond)
			g.pushed = bytes.Contains(doc, []byte(`"n": 2`))
		}
		f.publish(g)
	}
}

func (f *cfgFleet) runs(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.gws[id].doc.Config
	return c.Version, c.Trial
}

// byCohort is ids in the order a push reaches them.
func byCohort(gws map[string]string) []string {
	ids := sortedKeys(gws)
	slices.SortStableFunc(ids, func(a, b string) int { return ota.CohortOf(a) - ota.CohortOf(b) })
	return ids
}

func pushConfig(t *testing.T, dir, doc, selector, canary, step, maxFailures string, timeout time.Duration, key ed25519.PrivateKey, w *Watch) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cfg.json")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	o := ConfigPushOptions{File: file, Dir: dir, Selector: selector, Key: key, StepTimeout: timeout}
	var err error
	for _, s := range []struct {
		text string
		to   *Share
	}{{canary, &o.Canary}, {step, &o.Step}, {maxFailures, &o.MaxFailures}} {
		if *s.to, err = ParseShare(s.text); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := StartConfigPush(o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := NewDriver(ConfigStore(dir), w, &out)
	r.Tick, r.ConfigKey = 10*time.Millisecond, key
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = r.Drive(ctx)
	return out.String(), err
}

func testKey(t *testing.T) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	_, priv, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return key, key.Public().(ed25519.PublicKey)
}

const cfgDoc = `{"gateway": {"id": "{gateway}"}, "connectors": [], "n": 2}`

// TestConfigPushSteps: ten gateways; each gets its own document ({gateway}
// is its id) in steps of the rollout's shares, in cohort order; one that
// stays on trial is not done, and fails at the step timeout; one that
// refuses the document fails at once; gateways the selector leaves out
// get nothing.
func TestConfigPushSteps(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	gws := fleetOf(10, "good", map[string]string{"g-03": "trial", "g-05": "refuse", "x-1": "good"})
	f := newCfgFleet(t, dir, pub, gws)
	out, err := pushConfig(t, dir, cfgDoc, "g-*", "1", "50%", "2", time.Second, key, f.w)
	if err != nil || !strings.Contains(out, "done: 8 gateways confirmed it") ||
		!strings.Contains(out, "g-03 failed: not confirmed on config "+shortVersion([]byte(cfgDoc))+" within the step timeout 1s") ||
		!strings.Contains(out, "g-05 failed: config version "+shortVersion(render([]byte(cfgDoc), "g-05"))+" from http://fleet/g-05.json refused: invalid") {
		t.Fatalf("%v\n%s", err, out)
	}
	p, _ := ConfigStore(dir).Load()
	var order, wants []string
	for _, s := range p.Steps {
		order = append(order, s.Gateways...)
		wants = append(wants, strings.Join(s.Gateways, ","))
	}
	if want := byCohort(fleetOf(10, "good", nil)); !slices.Equal(order, want) || len(p.Steps) != 3 || len(p.Steps[0].Gateways) != 1 {
		t.Errorf("steps %q, want 1, 5 and 4 of %v", wants, want)
	}
	for id, b := range gws {
		v, trial := f.runs(id)
		want := shortVersion(render([]byte(cfgDoc), id))
		switch {
		case id == "x-1" || b == "refuse":
			if v != "local" {
				t.Errorf("%s runs %s, want its local file", id, v)
			}
		case b == "trial":
			if v != want || !trial {
				t.Errorf("%s: %s, trial %v", id, v, trial)
			}
		case v != want || trial:
			t.Errorf("%s runs %s (trial %v), want %s", id, v, trial, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x-1.json")); err == nil {
		t.Error("a gateway the selector leaves out got a document")
	}
	for _, id := range []string{"g-00", "g-09"} {
		doc, _ := os.ReadFile(filepath.Join(dir, id+".json"))
		sig, _ := os.ReadFile(filepath.Join(dir, id+".json.sig"))
		if string(doc) != strings.ReplaceAll(cfgDoc, "{gateway}", id) || sign.Verify(pub, doc, sig) != nil {
			t.Errorf("%s.json: %q, signature %v", id, doc, sign.Verify(pub, doc, sig))
		}
	}
}

// TestConfigPushHalts: a bad gateway in the first step halts the push;
// every document the step replaced is back byte for byte: a signed one,
// one without a signature file (the .sig is gone again), and one that
// was not there (gone again); the bad gateway runs its old document, the
// others of the step theirs again once pulled.
func TestConfigPushHalts(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	gws := fleetOf(6, "good", nil)
	ids := byCohort(gws)
	gws[ids[2]] = "bad"
	old := func(id string) []byte { return render([]byte(`{"gateway": {"id": "{gateway}"}, "n": 1}`), id) }
	for _, id := range ids[1:] {
		if err := os.WriteFile(filepath.Join(dir, id+".json"), old(id), 0o644); err != nil {
			t.Fatal(err)
		}
		if id != ids[1] {
			if err := os.WriteFile(filepath.Join(dir, id+".json.sig"), sign.Sign(key, old(id)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// ids[0] has no document, ids[1] one without signature: refused
	// until the push; the others run theirs.
	f := newCfgFleet(t, dir, pub, gws)
	for _, id := range ids[2:] {
		id := id
		waitFor(t, func() bool { v, trial := f.runs(id); return v == shortVersion(old(id)) && !trial })
	}
	before := map[string]string{}
	for _, id := range ids {
		for _, n := range []string{id + ".json", id + ".json.sig"} {
			if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
				before[n] = string(b)
			}
		}
	}
	out, err := pushConfig(t, dir, cfgDoc, "all", "3", "50%", "0", time.Minute, key, f.w)
	if err == nil || !strings.Contains(err.Error(), "step 1: 1 of 3 gateways failed, more than the 0 allowed (--max-failures 0): "+ids[2]+": rolled back: unhealthy for 2m0s: every connector is failing") {
		t.Fatalf("%v\n%s", err, out)
	}
	after := map[string]string{}
	for _, id := range ids {
		for _, n := range []string{id + ".json", id + ".json.sig"} {
			if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
				after[n] = string(b)
			}
		}
	}
	if len(after) != len(before) || sameFiles(before, after) != "" {
		t.Errorf("files after the halt:\n%v\nbefore the push:\n%v", after, before)
	}
	if v, _ := f.runs(ids[2]); v != shortVersion(old(ids[2])) {
		t.Errorf("the bad gateway runs %s after the halt, want its old document", v)
	}
	for _, id := range ids[3:] {
		if v, _ := f.runs(id); v != shortVersion(old(id)) {
			t.Errorf("%s, not in the step, runs %s", id, v)
		}
	}
	p, _ := ConfigStore(dir).Load()
	if p.State != Halted || len(p.Steps) != 1 || !slices.Equal(p.Steps[0].Gateways, ids[:3]) {
		t.Errorf("the plan after the halt: %s, %+v", p.State, p.Steps)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConfigPushStateBound: a step whose replaced documents would make
// the state file larger than its bound is refused before any document
// changes, with what to do.
func TestConfigPushStateBound(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	gws := fleetOf(12, "good", nil)
	big := []byte(`{"gateway": {"id": "x"}, "pad": "` + strings.Repeat("p", 1<<20) + `"}`)
	for id := range gws {
		if err := os.WriteFile(filepath.Join(dir, id+".json"), big, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newCfgFleet(t, dir, pub, gws)
	out, err := pushConfig(t, dir, cfgDoc, "all", "100%", "0", "0", time.Minute, key, f.w)
	if err == nil || !strings.Contains(err.Error(), "the rollout state would be larger than 16 MiB") || !strings.Contains(err.Error(), "roll out to fewer gateways at a time") {
		t.Fatalf("%v\n%s", err, out)
	}
	for id := range gws {
		if b, err := os.ReadFile(filepath.Join(dir, id+".json")); err != nil || !bytes.Equal(b, big) {
			t.Errorf("%s.json changed by a refused step: %v", id, err)
		}
		if _, err := os.Stat(filepath.Join(dir, id+".json.sig")); err == nil {
			t.Errorf("%s.json.sig written by a refused step", id)
		}
	}
	if p, _ := ConfigStore(dir).Load(); p == nil || len(p.Steps) != 0 || p.State != Running {
		t.Errorf("the state after the refused step: %+v", p)
	}
}
