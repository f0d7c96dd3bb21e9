package layers

import (
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/osgate/osgate"

// layer is one row of the picture in docs/design.md.
type layer struct {
	rank int
	name string
}

var (
	plumbing  = layer{0, "plumbing"}
	contract  = layer{1, "driver contract"}
	drivers   = layer{2, "drivers"}
	source    = layer{3, "config source"}
	config    = layer{4, "config"}
	appliance = layer{5, "appliance"}
	commands  = layer{6, "commands"}
)

// placement puts each package in its layer by its path; the longest
// matching prefix wins ("drivers/core" before "drivers").
var placement = map[string]layer{
	"internal":          plumbing,
	"board":             plumbing,
	"drivers/core":      contract,
	"drivers/transform": contract,
	"drivers":           drivers,
	"config/source":     source,
	"config":            config,
	"appliance":         appliance,
	"ota":               appliance,
	"fleet":             appliance,
	"appliance/cmd":     commands,
	"image":             commands,
}

// driverPlumbing is what a driver may import of osgate besides the
// contract: plumbing that makes no decision of the gateway's.
var driverPlumbing = []string{
	"drivers/core",
	"drivers/mapping", // JSON payloads to readings, for the MQTT and HTTP listeners
	"board",
	"internal/apikey",     // HTTP ingest keys, checked as the RPC service checks its own
	"internal/atomicfile", // state files (Z-Wave keys and node records) that survive a power cut
	"internal/backoff",
	"internal/lograte",
	"internal/lru",
	"internal/mqttwire", // the MQTT connector bounds what a field broker sends
	"internal/prom",     // a driver's own counters (M-Bus rejects, Z-Wave), served on /metrics
	"internal/redact",
	"internal/scope", // what a driver command needs of the caller's key
	"internal/strict",
	"internal/tlsconf",
}

// notDrivers are the folders under drivers/ that are not drivers.
var notDrivers = []string{"drivers/core", "drivers/transform", "drivers/all"}

// place returns the layer of a package (path relative to the module).
func place(pkg string) (layer, bool) {
	best, found := "", false
	for prefix := range placement {
		if (pkg == prefix || strings.HasPrefix(pkg, prefix+"/")) && len(prefix) >= len(best) {
			best, found = prefix, true
		}
	}
	return placement[best], found
}

func isDriver(pkg string) bool {
	return strings.HasPrefix(pkg, "drivers/") && !slices.Contains(notDrivers, pkg)
}

// violations lists every import that breaks a rule; imports maps each
// package (relative to the module) to the osgate packages it imports.
func violations(imports map[string][]string) []string {
	var out []string
	for _, pkg := range sortedKeys(imports) {
		from, ok := place(pkg)
		if !ok {
			out = append(out, pkg+": in no layer: place it in internal/layers's table and in docs/design.md")
			continue
		}
		for _, imp := range imports[pkg] {
			to, ok := place(imp)
			switch {
			case !ok:
				out = append(out, pkg+" imports "+imp+", which is in no layer")
			case to.rank > from.rank:
				out = append(out, pkg+" ("+from.name+") imports "+imp+" ("+to.name+"), a higher layer")
			case isDriver(pkg) && !slices.Contains(driverPlumbing, imp):
				out = append(out, pkg+" is a driver and imports "+imp+": a driver imports only the contract (drivers/core) and the plumbing meant for drivers")
			}
		}
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestLayers checks the module's own imports, under each build tag the
// project uses.
func TestLayers(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	for _, tags := range [][]string{nil, {"testhook"}, {"vmtest"}} {
		imports := moduleImports(t, root, tags)
		if len(imports) < 20 || imports["drivers/modbus"] == nil {
			t.Fatalf("tags %v: found only %d packages; is the walk broken?", tags, len(imports))
		}
		for _, v := range violations(imports) {
			t.Errorf("tags %v: %s", tags, v)
		}
	}
}

// moduleImports reads the non-test imports of every package of the module
// under root, as the go command would build them with tags.
func moduleImports(t *testing.T, root string, tags []string) map[string][]string {
	ctx := build.Default
	ctx.BuildTags = tags
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root {
			if name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module (gokrazy's build dirs)
			}
		}
		pkg, err := ctx.ImportDir(path, 0)
		var none *build.NoGoError
		if errors.As(err, &none) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		var own []string
		for _, imp := range pkg.Imports {
			if p, ok := strings.CutPrefix(imp, module+"/"); ok {
				own = append(own, p)
			}
		}
		out[rel] = own
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestViolations shows that each rule catches what it is for.
func TestViolations(t *testing.T) {
	for _, c := range []struct {
		imports map[string][]string
		want    string // "" for none
	}{
		{map[string][]string{"drivers/modbus": {"drivers/core", "internal/strict", "board", "internal/backoff"}}, ""},
		{map[string][]string{"drivers/mqtt": {"drivers/mapping", "internal/tlsconf"}}, ""},
		{map[string][]string{"drivers/all": {"drivers/modbus", "drivers/zwave"}}, ""},
		{map[string][]string{"appliance": {"config", "drivers/core", "internal/lru"}}, ""},
		{map[string][]string{"drivers/zwave": {"appliance/metrics"}}, "drivers/zwave (drivers) imports appliance/metrics (appliance), a higher layer"},
		{map[string][]string{"drivers/mapping": {"config"}}, "a higher layer"},
		{map[string][]string{"drivers/modbus": {"drivers/mqtt"}}, "is a driver and imports drivers/mqtt"},
		{map[string][]string{"drivers/modbus": {"internal/mqttconn"}}, "is a driver and imports internal/mqttconn"},
		{map[string][]string{"drivers/modbus": {"drivers/transform"}}, "is a driver and imports drivers/transform"},
		{map[string][]string{"config/source": {"appliance/metrics"}}, "(config source) imports appliance/metrics (appliance)"},
		{map[string][]string{"config/source": {"config"}}, "(config source) imports config (config)"},
		{map[string][]string{"drivers/core": {"drivers/system"}}, "(driver contract) imports drivers/system (drivers)"},
		{map[string][]string{"internal/sign": {"config/source"}}, "(plumbing) imports config/source"},
		{map[string][]string{"ota": {"appliance/cmd/osgate"}}, "a higher layer"},
		{map[string][]string{"tools/x": nil}, "tools/x: in no layer"},
	} {
		got := strings.Join(violations(c.imports), "\n")
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%v: got %q, want %q", c.imports, got, c.want)
		}
	}
}
