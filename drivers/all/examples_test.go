package all

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
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

// TestDidYouMeanEveryKey misspells every key of every example, one at a
// time and at every depth (gateway, broker, connectors, settings, devices,
// channels, mappings, ...), and checks that `osgate validate` names the
// misspelt key and suggests the right one. Device and channel keys are
// shared between the core and the driver, so a typo of either must find
// its key.
func TestDidYouMeanEveryKey(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.json"))
	if err != nil || len(files) < 6 {
		t.Fatalf("examples: %v %v", files, err)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		walkObjects(doc, "", "", func(obj map[string]any, path, parentKey string) {
			if freeForm[parentKey] {
				return // any key is valid: header names, member names
			}
			for k, v := range obj {
				typo := misspell(k)
				if strings.HasPrefix(k, "_") || typo == "" || obj[typo] != nil {
					continue
				}
				obj[typo] = v
				out, _ := json.Marshal(doc)
				delete(obj, typo)
				checked++
				want := strict.Join(path, typo) + fmt.Sprintf(": unknown field (did you mean %q?)", k)
				_, err := config.Parse(out)
				if err == nil || !slices.Contains(strings.Split(err.Error(), "\n"), want) {
					t.Errorf("%s: %s misspelt as %q:\ngot  %v\nwant %s", filepath.Base(f), strict.Join(path, k), typo, err, want)
				}
			}
		})
	}
	if checked < 200 {
		t.Fatalf("only %d keys checked", checked)
	}
}

// freeForm are keys whose object takes any member names.
var freeForm = map[string]bool{"headers": true, "units": true}

// misspell swaps the second and third letters ("interval" → "itnerval"),
// or doubles the last one of a two-letter key ("id" → "idd").
func misspell(k string) string {
	switch {
	case len(k) < 2:
		return ""
	case len(k) == 2:
		return k + k[1:]
	case k[1] == k[2]:
		return k[:1] + k[2:] // "offset" → "ofset"
	}
	return k[:1] + k[2:3] + k[1:2] + k[3:]
}

// walkObjects calls fn for every object in v with its path (as strict
// writes it) and the key it is the value of.
func walkObjects(v any, path, key string, fn func(obj map[string]any, path, key string)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x, path, key)
		for k, el := range x {
			if !strings.HasPrefix(k, "_") { // a comment, ignored
				walkObjects(el, strict.Join(path, k), k, fn)
			}
		}
	case []any:
		for i, el := range x {
			walkObjects(el, strict.Index(path, i), key, fn)
		}
	}
}

// TestHiddenTypes: the test hook connector works when named but is never
// offered among the connector types.
func TestHiddenTypes(t *testing.T) {
	if slices.Contains(core.Types(), "testhook") {
		t.Fatalf("testhook is listed: %v", core.Types())
	}
	if _, ok := core.Lookup("testhook"); !ok {
		t.Fatal("testhook is not registered")
	}
	_, err := config.Parse([]byte(`{"connectors":[{"name":"x","type":"testhok"}]}`))
	if err == nil || strings.Contains(err.Error(), "testhook") {
		t.Fatalf("an unknown type names the test hook: %v", err)
	}
	want := `connectors[0].type: unknown connector type "modbsu" (did you mean "modbus"? known: http, mbus, modbus, mqtt, system, zwave)`
	if _, err := config.Parse([]byte(`{"connectors":[{"name":"x","type":"modbsu"}]}`)); err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
