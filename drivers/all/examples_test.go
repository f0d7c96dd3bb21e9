package all

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/osgate/osgate/config"
)

// TestExamplesWithEveryDriver parses every examples/*.json with every
// driver osgate ships registered, as `osgate validate` does: each example
// is a valid osgate.json down to the drivers' own keys.
func TestExamplesWithEveryDriver(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.json"))
	if err != nil || len(files) < 6 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(b)
		if err != nil {
			t.Errorf("%s:\n%v", filepath.Base(f), err)
			continue
		}
		if len(cfg.Connectors) == 0 {
			t.Errorf("%s: no connectors", filepath.Base(f))
		}
	}
}
