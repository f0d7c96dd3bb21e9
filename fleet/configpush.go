package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/ota"
)

// ConfigPlanFile is the state of a configuration's push in the
// directory of the gateways' documents (not a name a gateway's document
// can have: those end in .json).
const ConfigPlanFile = "config-push.state"

// ConfigStore is the push state of a directory of gateways' documents.
func ConfigStore(dir string) Store { return Store{Dir: dir, File: ConfigPlanFile} }

// ConfigPushOptions start a configuration's push.
type ConfigPushOptions struct {
	// File is the document to push; {gateway} in it is each gateway's
	// id. Dir is the directory the gateways pull {gateway}.json (and its
	// .sig) from: remote.url of their bootstrap files points into it.
	File, Dir string
	// Selector chooses the gateways (required; "all" for every one).
	Selector string
	// Key is the config key: it signs each gateway's document.
	Key         ed25519.PrivateKey
	Canary      Share
	Step        Share
	MaxFailures Share
	// StepTimeout is how long a gateway of a step has to confirm the
	// document (pull it, and keep it past gateway.config_grace).
	StepTimeout time.Duration
}

// ConfigFiles are what a configuration's push writes, and the documents
// it replaced (to put back on a halt or an abort).
type ConfigFiles struct {
	// Document is the file pushed, byte for byte; {gateway} in it is each
	// gateway's id.
	Document []byte `json:"document"`
	// PublicKey is the public half (base64) of the config key that signs
	// each gateway's document.
	PublicKey string `json:"public_key"`
	// Before holds each document the push replaced, by file name, as it
	// was.
	Before map[string]SavedFile `json:"before,omitempty"`
}

// maxConfigDocument bounds the pushed document: what a gateway pulls.
const maxConfigDocument = 8 << 20

// StartConfigPush checks the document and writes a new plan, or, when a
// push of the same document is under way and nobody drives it, takes that
// one up (its own settings stand). Drive (with the same key) then
// advances it.
func StartConfigPush(o ConfigPushOptions, out io.Writer) (*Plan, error) {
	if strings.TrimSpace(o.Selector) == "" {
		return nil, errors.New(`a configuration's push needs -gateways: ids, a label such as site=berlin, or "all"`)
	}
	if _, err := ParseSelector(o.Selector); err != nil {
		return nil, err
	}
	if o.Key == nil {
		return nil, errors.New("a configuration's push needs -key: the config key (osgate config keygen) whose public key is the gateways' remote.public_key")
	}
	doc, err := readConfigDocument(o.File)
	if err != nil {
		return nil, err
	}
	st := ConfigStore(o.Dir)
	target := "config " + shortVersion(doc)
	if p, err := st.Load(); err != nil {
		return nil, err
	} else if p != nil && p.Active() {
		if p.Kind != KindConfig || p.Config == nil || !bytes.Equal(p.Config.Document, doc) {
			return nil, fmt.Errorf("a rollout of %s is %s in %s: let it finish, or `osgate fleet config abort` it first", p.Target, p.State, o.Dir)
		}
		if err := CheckConfigKey(p, o.Key); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "continuing the rollout of %s (%s, step %d; its settings: --canary %s --step %s --max-failures %s --gateways %q)\n",
			p.Target, p.State, len(p.Steps), p.Canary, p.Step, p.MaxFailures, p.Selector)
		return p, nil
	}
	return st.Update(func(p *Plan) (*Plan, error) {
		if p != nil && p.Active() {
			return nil, fmt.Errorf("a rollout of %s was started in %s meanwhile", p.Target, o.Dir)
		}
		return &Plan{Kind: KindConfig, Target: target, State: Running, Selector: o.Selector,
			Canary: o.Canary, Step: o.Step, MaxFailures: o.MaxFailures, StepTimeout: Duration(o.StepTimeout),
			Config:  &ConfigFiles{Document: doc, PublicKey: publicKey(o.Key)},
			Created: time.Now().UTC(), Reason: "started by " + who()}, nil
	})
}

// readConfigDocument reads the document to push and checks that it is a
// JSON object.
func readConfigDocument(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the configuration: %w", err)
	}
	defer f.Close()
	doc, err := io.ReadAll(io.LimitReader(f, maxConfigDocument+1))
	if err != nil {
		return nil, fmt.Errorf("read the configuration: %w", err)
	}
	if len(doc) > maxConfigDocument {
		return nil, fmt.Errorf("%s is larger than 8 MiB, more than a gateway pulls", path)
	}
	// Only the gateway can check the document fully: the keys only its
	// local file sets (the bridge's CA, the state dir) are merged in
	// there. A document it refuses fails the canary.
	var v any
	if err := json.Unmarshal(render(doc, "gw-check"), &v); err != nil {
		return nil, fmt.Errorf("%s is not JSON: %w", path, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s is not a configuration: a JSON object, as osgate.json", path)
	}
	return doc, nil
}

// render is the document of gateway id: {gateway} replaced by it (ids
// that take part need no escaping in JSON: validID).
func render(doc []byte, id string) []byte {
	return bytes.ReplaceAll(doc, []byte("{gateway}"), []byte(id))
}

// shortVersion is a document's version as the status document names it:
// the first 12 hex digits of its SHA-256.
func shortVersion(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])[:12]
}

func publicKey(key ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
}

// CheckConfigKey says whether key is the one the push p was started with
// (an error that says which is: nil when it is).
func CheckConfigKey(p *Plan, key ed25519.PrivateKey) error {
	switch {
	case p.Config == nil:
		return fmt.Errorf("the rollout state of %s has no document: it is damaged", p.Target)
	case key == nil:
		return fmt.Errorf("the rollout of %s signs each gateway's document: give -key, the config key whose public key is %s", p.Target, p.Config.PublicKey)
	case publicKey(key) != p.Config.PublicKey:
		return fmt.Errorf("-key is not the key the rollout of %s was started with (public key %s, not %s)", p.Target, p.Config.PublicKey, publicKey(key))
	}
	return nil
}

// validID matches the gateway ids a push writes a document for: a file
// name of the directory, and the same in the URL the gateway pulls.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func docFile(id string) string { return id + ".json" }

// configStager stages a configuration: a step writes the documents of
// the next gateways of the selection, in the order of their rollout
// cohorts (a hash of the id: the canary is spread over the fleet).
type configStager struct{ key ed25519.PrivateKey }

func (configStager) takesPart(g Gateway) bool { return validID.MatchString(g.ID) }

func (configStager) none(p *Plan) error {
	return fmt.Errorf("no online gateway matches -gateways %q (ids other than letters, digits, '.', '_' and '-' are left out): see `osgate fleet ls`", p.Selector)
}

func (configStager) choose(p *Plan, dir string, online, offline []Gateway, want int) (Step, error) {
	order := make([]string, 0, len(online))
	for _, g := range online {
		order = append(order, g.ID)
	}
	slices.SortFunc(order, func(a, b string) int {
		if ca, cb := ota.CohortOf(a), ota.CohortOf(b); ca != cb {
			return ca - cb
		}
		return strings.Compare(a, b)
	})
	step := Step{Want: want, Gateways: order[:want], Final: want >= len(order)}
	if step.Final {
		// Offline ones get theirs too, and take it when they are back
		// (not judged).
		for _, g := range offline {
			step.Offline = append(step.Offline, g.ID)
		}
	}
	var names []string
	for _, id := range append(slices.Clone(step.Gateways), step.Offline...) {
		names = append(names, docFile(id))
	}
	if err := rememberBefore(&p.Config.Before, dir, names); err != nil {
		return Step{}, err
	}
	return step, nil
}

func (c configStager) apply(p *Plan, dir string, s *Step) (string, error) {
	if err := CheckConfigKey(p, c.key); err != nil {
		return "", err
	}
	ids := append(slices.Clone(s.Gateways), s.Offline...)
	for _, id := range ids {
		doc := render(p.Config.Document, id)
		if err := writeManifestFile(dir, docFile(id), SavedFile{Manifest: doc, Sig: sign.Sign(c.key, doc)}); err != nil {
			return "", fmt.Errorf("write the document of %s: %w", id, err)
		}
	}
	return fmt.Sprintf("%s written for %s", p.Target, list(ids, 5)), nil
}

func (configStager) revert(p *Plan, dir string) error {
	if p.Config == nil {
		return nil
	}
	return revertFiles(p.Config.Before, dir)
}

func (configStager) revertHelp(p *Plan) string {
	return "the documents as they were are in " + ConfigPlanFile + " (config.before, base64): write them back by hand"
}

// judge: done when the gateway runs its document, online and no longer
// on trial; failed when it rolled the document back or refused it.
func (configStager) judge(p *Plan, g Gateway) (string, string) {
	c := g.Doc.Config
	if c == nil {
		return outPending, ""
	}
	v := shortVersion(render(p.Config.Document, g.ID))
	switch {
	case c.Rejected != nil && c.Rejected.Version == v:
		return outFailed, "rolled back: " + orDash(c.Rejected.Reason)
	case slices.Contains(c.Bad, v):
		return outFailed, "rolled back (version " + v + " is marked bad there)"
	case strings.Contains(c.Error, v) && strings.Contains(c.Error, "refused"):
		return outFailed, c.Error
	case c.Version == v && !c.Trial && g.Online():
		return outDone, ""
	}
	return outPending, ""
}

// busy: after a halt, a gateway is between documents while one is on
// trial, or while it runs the pushed document and its old one is back
// (and not refused: then it keeps the pushed one).
func (configStager) busy(p *Plan, g Gateway) bool {
	c := g.Doc.Config
	if c == nil || !g.Online() {
		return false
	}
	if c.Trial {
		return true
	}
	v := shortVersion(render(p.Config.Document, g.ID))
	before, ok := p.Config.Before[docFile(g.ID)]
	if c.Version != v || !ok || before.Absent {
		return false
	}
	old := shortVersion(before.Manifest)
	refused := strings.Contains(c.Error, old) && strings.Contains(c.Error, "refused")
	return old != v && !refused && !slices.Contains(c.Bad, old)
}

func (configStager) reach(s Step) string {
	if s.Final {
		return "every selected gateway's document"
	}
	return "the documents of " + list(s.Gateways, 5)
}

func (configStager) back(*Plan) string { return "every document the rollout wrote is back as it was" }

func (configStager) doneReason(p *Plan) string {
	return fmt.Sprintf("every selected gateway's document is %s", p.Target)
}

// WritePlanJSON writes p without the documents it keeps.
func WritePlanJSON(w io.Writer, p *Plan) error {
	q := *p
	q.Release.Manifest, q.Release.Sig, q.Release.Before = nil, nil, nil
	if q.Config != nil {
		c := *q.Config
		c.Document, c.Before = nil, nil
		q.Config = &c
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(q)
}
