package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/osgate/osgate/drivers/core"
)

// TestReadmeExamples parses the configs shown in examples/README.md, so the
// documentation cannot drift from the schema. Driver types that this test
// binary does not link get a stand-in that accepts any driver keys: the
// envelope is what is checked here; each driver tests its own example.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "examples", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)(<!-- typo example[^\n]*\n)?```json\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	n := 0
	for _, m := range blocks {
		doc := m[2]
		if m[1] != "" {
			continue // full of typos on purpose; appliance/cmd/osgate checks what validate says
		}
		if !strings.Contains(doc, `"connectors"`) {
			continue // not a whole config (e.g. the export payload)
		}
		n++
		standIns(t, []byte(doc))
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("example %d in examples/README.md:\n%s\n%v", n, doc, err)
		}
	}
	if n == 0 {
		t.Fatal("no config example found in examples/README.md")
	}
}

// TestExampleFiles parses every examples/*.json. As above, driver types not
// linked here get a lenient stand-in: this checks the common envelope
// (names, timing, transforms, broker, export, rpc); the drivers' own tests
// check their keys.
func TestExampleFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/*.json: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		standIns(t, b)
		if _, err := Parse(b); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}

// standIns registers a lenient stand-in for every connector type of doc
// that this test binary does not link.
func standIns(t *testing.T, doc []byte) {
	t.Helper()
	var env struct{ Connectors []struct{ Type string } }
	if err := json.Unmarshal(doc, &env); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	for _, cn := range env.Connectors {
		if _, ok := core.Lookup(cn.Type); !ok && cn.Type != "" {
			core.Register(cn.Type, func(core.ConnectorConfig) (core.Connector, error) { return testConn{}, nil })
		}
	}
}
