package http

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
)

// TestExample: examples/http.json is a valid osgate.json, and this driver
// builds both its connectors, one of each mode.
func TestExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "http.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatalf("examples/http.json:\n%v", err)
	}
	var listeners, pollers int
	for i := range cfg.Connectors {
		cc := cfg.ConnectorConfig(i, nil)
		c, err := New(cc)
		if err != nil {
			t.Fatalf("connector %s: %v", cc.Name, err)
		}
		if _, ok := c.(core.Listener); ok {
			listeners++
		}
		if _, ok := c.(core.Poller); ok {
			pollers++
		}
		c.Close()
	}
	if listeners != 1 || pollers != 1 {
		t.Fatalf("%d listeners and %d pollers, want one of each", listeners, pollers)
	}
}
