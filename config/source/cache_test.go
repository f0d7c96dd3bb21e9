package source

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
	bolt "go.etcd.io/bbolt"
)

func testEntry(name string, size int) entry {
	d := doc(name + strings.Repeat(" ", size))
	return entry{Doc: d, Version: versionOf(d), ETag: `"` + name + `"`, FetchedAt: time.Now().UTC()}
}

// filledCache writes a cache that has grown over several pages.
func filledCache(t testing.TB, path string) { fillCache(t, path, 20000) }

// fillCache stores four documents, the biggest 4×size bytes.
func fillCache(t testing.TB, path string, size int) {
	t.Helper()
	c, moved, err := openCache(path, slog.Default())
	if err != nil || moved != "" {
		t.Fatalf("open fresh cache: %v (moved %q)", err, moved)
	}
	for i, name := range []string{"a", "b", "c", "d"} {
		if err := c.store(testEntry(name, size*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
}

func TestCacheStoreAndMarkBad(t *testing.T) {
	c, _, err := openCache(filepath.Join(t.TempDir(), CacheFile), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if e, err := c.current(); e != nil || err != nil {
		t.Fatalf("fresh cache: %v, %v", e, err)
	}
	v1, v2 := testEntry("v1", 0), testEntry("v2", 0)
	for _, e := range []entry{v1, v2} {
		if err := c.store(e); err != nil {
			t.Fatal(err)
		}
	}
	// Storing the current version again refreshes it, the previous stays.
	v2.ETag = `"v2-again"`
	if err := c.store(v2); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.current(); e == nil || e.ETag != v2.ETag {
		t.Fatalf("current %+v, want v2 with the new ETag", e)
	}
	if err := c.markBad(BadVersion{Version: v2.Version, At: time.Now(), Reason: "unhealthy"}); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.current(); e == nil || e.Version != v1.Version {
		t.Fatalf("after marking v2 bad the current is %+v, want v1", e)
	}
	if err := c.markBad(BadVersion{Version: v1.Version, At: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.current(); e != nil {
		t.Fatalf("after marking both bad the current is %+v, want none", e)
	}
	bad, err := c.bad()
	if err != nil || len(bad) != 2 || bad[0].Version != v2.Version || bad[0].Reason != "unhealthy" || bad[1].Version != v1.Version {
		t.Fatalf("bad versions %+v, %v", bad, err)
	}
}

// damage makes a damaged copy of a good cache file.
var damage = map[string]func(good []byte) []byte{
	"truncated to two pages": func(g []byte) []byte { return g[:2*os.Getpagesize()+100] },
	"truncated to half":      func(g []byte) []byte { return g[:len(g)/2] },
	"truncated in meta page": func(g []byte) []byte { return g[:100] },
	"garbage": func(g []byte) []byte {
		r := rand.New(rand.NewPCG(1, 2))
		b := make([]byte, len(g))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	},
	"data pages overwritten": func(g []byte) []byte {
		b := bytes.Clone(g)
		ps := os.Getpagesize()
		for i := 2 * ps; i < len(b); i++ {
			b[i] = 0xA5
		}
		return b
	},
	"both metas zeroed": func(g []byte) []byte {
		b := bytes.Clone(g)
		clear(b[:2*os.Getpagesize()])
		return b
	},
}

func TestCorruptCacheMovedAside(t *testing.T) {
	goodPath := filepath.Join(t.TempDir(), CacheFile)
	filledCache(t, goodPath)
	good, err := os.ReadFile(goodPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, CacheFile)
			bad := f(good)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			c, moved, err := openCache(path, slog.Default())
			if err != nil {
				t.Fatalf("openCache: %v", err)
			}
			defer c.close()
			if moved == "" || !strings.HasPrefix(filepath.Base(moved), CacheFile+".corrupt-") {
				t.Fatalf("not moved aside: %q", moved)
			}
			if kept, err := os.ReadFile(moved); err != nil || !bytes.Equal(kept, bad) {
				t.Fatalf("moved-aside file differs from the damaged one (%v)", err)
			}
			if e, err := c.current(); e != nil || err != nil {
				t.Fatalf("fresh cache holds %+v, %v", e, err)
			}
			if err := c.store(testEntry("new", 0)); err != nil {
				t.Fatalf("fresh cache refuses a store: %v", err)
			}
		})
	}
}

func TestGoodCacheNotMoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), CacheFile)
	filledCache(t, path)
	c, moved, err := openCache(path, slog.Default())
	if err != nil || moved != "" {
		t.Fatalf("good cache: %v, moved to %q", err, moved)
	}
	defer c.close()
	if e, err := c.current(); err != nil || e == nil || e.ETag != `"d"` {
		t.Fatalf("current %+v, %v", e, err)
	}
}

// With a truncated cache and the fleet unreachable, the source runs the
// local file and says why.
func TestSourceSurvivesTruncatedCache(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(state, CacheFile)
	filledCache(t, path)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(local, doc("local"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := newTestKey(t)
	src, err := New(Options[*testConfig]{
		LocalPath: local,
		StateDir:  state,
		Gateway:   gw,
		// Nothing listens there: the fleet is unreachable.
		Remote:   &RemoteSettings{URL: "http://" + testpeer.Addr(testpeer.FreePort(t)) + "/{gateway}.json", PublicKey: key.pub},
		Validate: validate,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	expect(t, next(t, src), "local", Local)
	if st := src.Status(); st.LastOutcome != "error" {
		t.Fatalf("status %+v", st)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt cache not moved aside: %v", matches)
	}
}

// FuzzOpenCache: whatever bytes config.db holds, opening it neither
// crashes nor hangs, and leaves a usable cache.
func FuzzOpenCache(f *testing.F) {
	goodPath := filepath.Join(f.TempDir(), CacheFile)
	fillCache(f, goodPath, 2000) // small: the fuzzer is slow with big inputs
	good, err := os.ReadFile(goodPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, d := range damage {
		f.Add(d(good))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), CacheFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := openCache(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("openCache: %v", err)
		}
		defer c.close()
		if _, err := c.current(); err != nil {
			t.Fatalf("current after a successful open: %v", err)
		}
		if err := c.store(testEntry("x", 10)); err != nil {
			t.Fatalf("store after a successful open: %v", err)
		}
	})
}

// A page that points back at itself would make bbolt (and its own Check)
// recurse without end; the preflight refuses it.
func TestCacheWithCycleMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), CacheFile)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketBad)
		if err != nil {
			return err
		}
		for i := range 2000 {
			if err := b.Put(fmt.Appendf(nil, "version-%06d", i), []byte(`{"version":"x"}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Point the first child of the first branch page at the page itself.
	ps := os.Getpagesize()
	branch := -1
	for id := 2; (id+1)*ps <= len(data); id++ {
		off := id * ps
		if ne.Uint64(data[off:]) == uint64(id) && ne.Uint16(data[off+8:]) == flagBranch {
			branch = id
			break
		}
	}
	if branch < 0 {
		t.Fatal("test setup: no branch page in a bucket of 2000 keys")
	}
	ne.PutUint64(data[branch*ps+headerSize+8:], uint64(branch))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := preflight(path); err == nil || !strings.Contains(err.Error(), "referenced twice") {
		t.Fatalf("preflight: %v", err)
	}
	c, moved, err := openCache(path, slog.Default())
	if err != nil || moved == "" {
		t.Fatalf("openCache: %v, moved to %q", err, moved)
	}
	c.close()
}
