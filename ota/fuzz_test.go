package ota

import (
	"os"
	"reflect"
	"testing"
)

// FuzzManifest feeds the manifest parser arbitrary bytes: it must not
// panic, and what it accepts must survive a sign-and-parse round trip
// unchanged (so the agent acts on exactly what was signed).
func FuzzManifest(f *testing.F) {
	for _, name := range []string{"testdata/manifest.json", "testdata/manifest-minimal.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":"v1","channel":"a","created_at":"2026-01-01T00:00:00Z","parts":{"root":null}}`))
	f.Add([]byte(`[1,2,3]`))
	pub, priv := testKey(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if m != nil {
				t.Fatal("a manifest returned with an error")
			}
			return
		}
		out, sig, err := SignManifest(priv, m)
		if err != nil {
			t.Fatalf("accepted manifest does not sign: %v", err)
		}
		m2, err := OpenManifest(pub, out, sig)
		if err != nil {
			t.Fatalf("re-signed manifest refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}
