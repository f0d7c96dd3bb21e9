package source

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/tlsconf"
)

// testConfig stands in for config.Config: a document is valid when it is
// a JSON object with a non-empty "name".
type testConfig struct {
	Name string `json:"name"`
}

func validate(doc []byte) (*testConfig, error) {
	var c testConfig
	if err := json.Unmarshal(doc, &c); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if c.Name == "" {
		return nil, errors.New("name: is required")
	}
	return &c, nil
}

func doc(name string) []byte { return []byte(fmt.Sprintf(`{"name":%q}`+"\n", name)) }

const gw = "gw-1"

// setup is a fleet, a local file and the options of a source using them.
type setup struct {
	fleet *fleet
	key   testKey
	opts  Options[*testConfig]
}

func newSetup(t *testing.T, fo fleetOptions) *setup {
	t.Helper()
	s := &setup{fleet: startFleet(t, fo), key: newTestKey(t)}
	dir := t.TempDir()
	local := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(local, doc("local"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.opts = Options[*testConfig]{
		LocalPath: local,
		StateDir:  filepath.Join(dir, "state"),
		Gateway:   gw,
		Remote: &RemoteSettings{
			URL:       s.fleet.url(),
			Interval:  time.Second,
			Timeout:   20 * time.Second,
			PublicKey: s.key.pub,
		},
		Validate:  validate,
		LocalPoll: 50 * time.Millisecond,
	}
	return s
}

func (s *setup) publish(t *testing.T, d []byte) {
	t.Helper()
	s.fleet.publish(t, gw, d, sign.Sign(s.key.priv, d))
}

func (s *setup) open(t *testing.T) *Source[*testConfig] {
	t.Helper()
	src, err := New(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

const docURI = "/gateways/" + gw + ".json"

func next(t *testing.T, src *Source[*testConfig]) Update[*testConfig] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v (status %+v)", err, src.Status())
	}
	return u
}

func expect(t *testing.T, u Update[*testConfig], name string, origin Origin) {
	t.Helper()
	if u.Config.Name != name || u.Origin != origin {
		t.Fatalf("got %q from %s, want %q from %s", u.Config.Name, u.Origin, name, origin)
	}
	if u.Version != versionOf(u.Document) {
		t.Fatalf("version %s is not the document's", u.Version)
	}
}

// quiet runs Next until cond holds and checks that it delivered nothing.
func quiet(t *testing.T, src *Source[*testConfig], what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := nextAsync(ctx, src)
	waitFor(t, what, func() bool {
		select {
		case r := <-ch:
			t.Fatalf("waiting for %s, Next returned %+v, %v", what, r.u, r.err)
		default:
		}
		return cond()
	})
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("waiting for %s, Next returned %q from %s, %v", what, r.u.Config.Name, r.u.Origin, r.err)
	}
}

func TestChangedConfigPickedUpAtNextPull(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	s.publish(t, doc("v1"))
	src := s.open(t)
	expect(t, next(t, src), "v1", Remote)

	// nginx logs a request after answering it: wait for the log.
	s.fleet.waitRequests(t, docURI, 200, 1)
	if n := s.fleet.requests(t, docURI, 0); n != 1 {
		t.Fatalf("%d requests for the first document, want 1", n)
	}
	s.publish(t, doc("v2"))
	expect(t, next(t, src), "v2", Remote)
	// The first pull after the change brought it: one more request, a 200.
	s.fleet.waitRequests(t, docURI, 200, 2)
	if n := s.fleet.requests(t, docURI, 0); n != 2 {
		t.Fatalf("%d requests in all, want 2: the change took more than one pull", n)
	}
	st := src.Status()
	if st.Source != Remote || st.Version != versionOf(doc("v2")) || st.ETag == "" || st.LastOutcome != "200" || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
}

func TestUnchangedConfigCostsOne304(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	s.publish(t, doc("v1"))
	src := s.open(t)
	expect(t, next(t, src), "v1", Remote)
	c304 := fetches("304")

	// nginx logs a request after writing the answer and the source counts
	// it after reading the answer: either may come first, so wait for both.
	quiet(t, src, "three 304s", func() bool {
		return s.fleet.requests(t, docURI, 304) >= 3 && fetches("304")-c304 >= 3
	})

	if n := s.fleet.requests(t, docURI, 200); n != 1 {
		t.Fatalf("%d full downloads of an unchanged document, want 1", n)
	}
	if n := s.fleet.requests(t, docURI+".sig", 0); n != 1 {
		t.Fatalf("signature fetched %d times, want once (only with the 200)", n)
	}
	if st := src.Status(); st.LastOutcome != "304" || st.Source != Remote {
		t.Fatalf("status %+v", st)
	}
}

func TestRestartFallsBackToCacheThenLocal(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	s.publish(t, doc("v1"))
	src := s.open(t)
	expect(t, next(t, src), "v1", Remote)
	src.Close()

	// Restart with the fleet up: unchanged, so a 304 confirms the cache.
	src = s.open(t)
	expect(t, next(t, src), "v1", Remote)
	s.fleet.waitRequests(t, docURI, 304, 1)
	if n, full := s.fleet.requests(t, docURI, 0), s.fleet.requests(t, docURI, 200); n != 2 || full != 1 {
		t.Fatalf("%d requests, %d full downloads; want 2 and 1 (the restart costs one 304)", n, full)
	}
	src.Close()

	s.fleet.stop(t)
	src = s.open(t)
	expect(t, next(t, src), "v1", Cache)
	st := src.Status()
	if st.LastOutcome != "error" || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("status with the fleet down: %+v", st)
	}
	// The fleet comes back serving the same document: a 304 confirms it.
	s.fleet.start(t)
	quiet(t, src, "the fleet to confirm the cached document", func() bool { return src.Status().Source == Remote })
	if st := src.Status(); st.LastError != "" || st.LastOutcome != "304" {
		t.Fatalf("status after the fleet came back: %+v", st)
	}
	src.Close()
	s.fleet.stop(t)

	if err := os.Remove(filepath.Join(s.opts.StateDir, CacheFile)); err != nil {
		t.Fatal(err)
	}
	src = s.open(t)
	expect(t, next(t, src), "local", Local)
	if st := src.Status(); st.Source != Local || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestInvalidRemoteConfigRefused(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	s.publish(t, doc("v1"))
	src := s.open(t)
	expect(t, next(t, src), "v1", Remote)
	refused := fetches("refused")

	s.publish(t, []byte(`{"name":""}`))
	quiet(t, src, "the invalid document to be refused", func() bool { return src.Status().LastOutcome == "refused" })
	st := src.Status()
	if st.Version != versionOf(doc("v1")) || st.LastOutcome != "refused" || !strings.Contains(st.LastError, "name: is required") {
		t.Fatalf("status after an invalid document: %+v", st)
	}
	if d := fetches("refused") - refused; d != 1 {
		t.Fatalf("refused metric grew by %v, want 1", d)
	}
	// It is not downloaded again while unchanged, and every pull that
	// finds it unchanged (304) reports the refusal again, not a 304.
	n304 := s.fleet.requests(t, docURI, 304)
	quiet(t, src, "two 304s for the refused document", func() bool { return s.fleet.requests(t, docURI, 304) >= n304+2 })
	quiet(t, src, "the status of the last pull", func() bool { return fetches("refused")-refused >= 3 })
	if st := src.Status(); st.LastOutcome != "refused" || !strings.Contains(st.LastError, "name: is required") || st.Version != versionOf(doc("v1")) {
		t.Fatalf("status after 304s of the refused document: %+v", st)
	}
	if n := s.fleet.requests(t, docURI, 200); n != 2 {
		t.Fatalf("%d full downloads, want 2 (v1 and the refused document once)", n)
	}

	// A restart does not run it either: the cache does.
	src.Close()
	src = s.open(t)
	expect(t, next(t, src), "v1", Cache)

	s.publish(t, doc("v3"))
	expect(t, next(t, src), "v3", Remote)
	if st := src.Status(); st.LastError != "" {
		t.Fatalf("error kept after a good document: %+v", st)
	}
}

func TestBadSignatureRefused(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	other := newTestKey(t)

	// At start: no cache, so a badly signed document leaves the local file.
	s.fleet.publish(t, gw, doc("forged"), sign.Sign(other.priv, doc("forged")))
	src := s.open(t)
	expect(t, next(t, src), "local", Local)
	if st := src.Status(); !strings.Contains(st.LastError, sign.ErrBadSignature.Error()) || st.LastOutcome != "refused" {
		t.Fatalf("status %+v", st)
	}

	s.publish(t, doc("v1"))
	expect(t, next(t, src), "v1", Remote)

	// Running: wrong key, then no signature at all.
	for _, c := range []struct {
		sig  []byte
		want string
	}{
		{sign.Sign(other.priv, doc("forged2")), sign.ErrBadSignature.Error()},
		{[]byte{}, sign.ErrUnsigned.Error()},
		{[]byte("not a signature\n"), "neither 64 raw bytes nor base64"},
	} {
		s.fleet.publish(t, gw, doc("forged2"), c.sig)
		quiet(t, src, c.want, func() bool { return strings.Contains(src.Status().LastError, c.want) })
		if st := src.Status(); st.Version != versionOf(doc("v1")) || st.LastOutcome != "refused" {
			t.Fatalf("status %+v", st)
		}
	}

	// A raw 64-byte signature is accepted too.
	raw := ed25519.Sign(s.key.priv, doc("v2"))
	s.fleet.publish(t, gw, doc("v2"), raw)
	expect(t, next(t, src), "v2", Remote)
}

func TestMarkBad(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	s.publish(t, doc("v1"))
	src := s.open(t)
	expect(t, next(t, src), "v1", Remote)
	s.publish(t, doc("v2"))
	u := next(t, src)
	expect(t, u, "v2", Remote)

	if err := src.MarkBad(u.Version, "export unreachable"); err != nil {
		t.Fatal(err)
	}
	st := src.Status()
	if st.Version != versionOf(doc("v1")) || len(st.BadVersions) != 1 || st.BadVersions[0].Version != u.Version || st.BadVersions[0].Reason != "export unreachable" {
		t.Fatalf("status after MarkBad: %+v", st)
	}
	// The fleet still serves v2 (304: unchanged): each pull says it is
	// refused as marked bad.
	n304 := s.fleet.requests(t, docURI, 304)
	quiet(t, src, "a 304 for the bad version", func() bool { return s.fleet.requests(t, docURI, 304) > n304 })
	quiet(t, src, "the status of that pull", func() bool {
		st := src.Status()
		return st.LastOutcome == "refused" && strings.Contains(st.LastError, "marked bad")
	})
	if st := src.Status(); st.Version != versionOf(doc("v1")) {
		t.Fatalf("status after a 304 of the bad version: %+v", st)
	}
	src.Close()

	// After a restart the fleet still serves v2: refused, the cache (v1
	// again) runs, and the bad list survived.
	src = s.open(t)
	expect(t, next(t, src), "v1", Cache)
	if st := src.Status(); !strings.Contains(st.LastError, "marked bad") || len(st.BadVersions) != 1 {
		t.Fatalf("status after restart: %+v", st)
	}
	s.publish(t, doc("v3"))
	expect(t, next(t, src), "v3", Remote)
}

func TestLocalFileOnly(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(local, doc("l1"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options[*testConfig]{LocalPath: local, StateDir: filepath.Join(dir, "state"), Validate: validate, LocalPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	expect(t, next(t, src), "l1", Local)

	mtime := time.Now().Add(-time.Hour)
	rewrite := func(d []byte) {
		mtime = mtime.Add(time.Second)
		write(t, local, d, mtime)
	}
	rewrite(doc("l2"))
	expect(t, next(t, src), "l2", Local)

	rewrite([]byte(`{"name":"`))
	quiet(t, src, "the broken local file to be refused", func() bool { return src.Status().LastError != "" })
	if st := src.Status(); st.Version != versionOf(doc("l2")) || !strings.Contains(st.LastError, "invalid") {
		t.Fatalf("status %+v", st)
	}
	rewrite(doc("l3"))
	expect(t, next(t, src), "l3", Local)
	if st := src.Status(); st.LastError != "" || st.URL != "" {
		t.Fatalf("status %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", CacheFile)); err != nil {
		t.Fatalf("cache not created: %v", err)
	}
}

func TestTLSClientCertificateAndToken(t *testing.T) {
	files := makeTLS(t)
	s := newSetup(t, fleetOptions{token: "s3cret", tls: files})
	s.fleet.publish(t, gw, doc("tls"), nil) // unsigned: https alone
	s.opts.Remote = &RemoteSettings{
		URL:         s.fleet.url(),
		Interval:    time.Second,
		Timeout:     20 * time.Second,
		Client:      tlsconf.Client{CAFile: files.ca, CertFile: files.clientCert, KeyFile: files.clientKey},
		BearerToken: "s3cret",
	}
	src := s.open(t)
	expect(t, next(t, src), "tls", Remote)
	src.Close()

	s.opts.Remote.BearerToken = "wrong"
	src = s.open(t)
	expect(t, next(t, src), "tls", Cache)
	if st := src.Status(); !strings.Contains(st.LastError, "401") {
		t.Fatalf("status with a wrong token: %+v", st)
	}
	src.Close()

	s.opts.Remote.BearerToken = "s3cret"
	s.opts.Remote.CertFile, s.opts.Remote.KeyFile = "", ""
	src = s.open(t)
	expect(t, next(t, src), "tls", Cache)
	if st := src.Status(); !strings.Contains(st.LastError, "400") {
		t.Fatalf("status without a client certificate: %+v", st)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, o := range []Options[*testConfig]{
		{LocalPath: "x"},
		{Validate: validate},
		{LocalPath: "x", Validate: validate, Remote: &RemoteSettings{URL: "http://fleet/{gateway}.json"}},
		{LocalPath: "x", Validate: validate, Remote: &RemoteSettings{URL: "https://fleet/{gateway}.json", Client: tlsconf.Client{CAFile: "/nonexistent/ca.pem"}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestNothingUsable(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(local, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options[*testConfig]{LocalPath: local, Validate: validate})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Next(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no usable configuration") || !strings.Contains(err.Error(), "name: is required") {
		t.Fatalf("Next: %v", err)
	}
	if err := os.WriteFile(local, doc("fixed"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, next(t, src), "fixed", Local)
}

// fetches reads the fetch counter of one outcome.
func fetches(outcome string) float64 {
	return configFetches.WithLabelValues(outcome).Value()
}

func TestFleetOutageWhileRunning(t *testing.T) {
	s := newSetup(t, fleetOptions{})
	s.publish(t, doc("v1"))
	src := s.open(t)
	expect(t, next(t, src), "v1", Remote)
	errs := fetches("error")

	s.fleet.stop(t)
	quiet(t, src, "a failed pull", func() bool { return src.Status().LastOutcome == "error" })
	st := src.Status()
	if st.Version != versionOf(doc("v1")) || st.Source != Remote || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("status during the outage: %+v", st)
	}
	if fetches("error") <= errs {
		t.Fatal("error metric did not grow")
	}

	s.publish(t, doc("v2"))
	s.fleet.start(t)
	expect(t, next(t, src), "v2", Remote)
	if st := src.Status(); st.LastError != "" || st.LastOutcome != "200" {
		t.Fatalf("status after the outage: %+v", st)
	}
}

// Servers without ETag still answer If-Modified-Since; servers with no
// validators at all answer 200 each time, and the same document is not
// delivered again.
func TestServersWithFewerValidators(t *testing.T) {
	for _, v := range []string{"last-modified", "none"} {
		t.Run(v, func(t *testing.T) {
			s := newSetup(t, fleetOptions{validators: v})
			s.publish(t, doc("v1"))
			src := s.open(t)
			expect(t, next(t, src), "v1", Remote)
			status := 304
			if v == "none" {
				status = 200
			}
			cachePath := filepath.Join(s.opts.StateDir, CacheFile)
			before, err := os.Stat(cachePath)
			if err != nil {
				t.Fatal(err)
			}
			quiet(t, src, fmt.Sprintf("three answers %d", status), func() bool {
				return s.fleet.requests(t, docURI, status) >= 3
			})
			// The unchanged document was not written to the cache again.
			if after, err := os.Stat(cachePath); err != nil || !after.ModTime().Equal(before.ModTime()) {
				t.Fatalf("cache rewritten for an unchanged document (%v)", err)
			}
			if st := src.Status(); st.Source != Remote || st.LastError != "" || st.ETag != "" {
				t.Fatalf("status %+v", st)
			}
			s.publish(t, doc("v2"))
			expect(t, next(t, src), "v2", Remote)
		})
	}
}
