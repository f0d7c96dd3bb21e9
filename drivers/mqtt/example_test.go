package mqtt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/osgate/osgate/config"
)

// TestExample: examples/mqtt.json is a valid osgate.json, and this driver
// builds its connector.
func TestExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "mqtt.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatalf("examples/mqtt.json:\n%v", err)
	}
	n := 0
	for i := range cfg.Connectors {
		cc := cfg.ConnectorConfig(i, nil)
		c, err := New(cc)
		if err != nil {
			t.Fatalf("connector %s: %v", cc.Name, err)
		}
		n += len(c.(*Connector).brokers)
		c.Close()
	}
	if n != 2 {
		t.Fatalf("%d brokers, want 2", n)
	}
}
