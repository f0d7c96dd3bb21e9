package modbus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/osgate/osgate/config"
)

// TestExample: examples/modbus.json is a valid osgate.json, and this driver
// builds every connector in it.
func TestExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "modbus.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatalf("examples/modbus.json:\n%v", err)
	}
	n := 0
	for i := range cfg.Connectors {
		cc := cfg.ConnectorConfig(i, nil)
		c, err := New(cc)
		if err != nil {
			t.Fatalf("connector %s: %v", cc.Name, err)
		}
		for _, d := range cc.Devices {
			n += len(d.Channels)
		}
		c.Close()
	}
	if n != 13 {
		t.Fatalf("%d channels, want 13", n)
	}
}
