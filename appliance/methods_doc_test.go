package appliance

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/osgate/osgate/appliance/health"
)

// TestStatusFieldsDocumented: every field gateway.status and devices.list
// return is explained in appliance/rpc/README.md, and the README explains
// no field they do not return.
func TestStatusFieldsDocumented(t *testing.T) {
	b, err := os.ReadFile("rpc/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		section string
		typ     reflect.Type
	}{
		{"### `gateway.status`", reflect.TypeFor[statusResult]()},
		{"### `devices.list`", reflect.TypeFor[deviceInfo]()},
	} {
		doc := documentedFields(t, string(b), tc.section)
		var got []string
		jsonFields(tc.typ, "", map[string]reflect.Type{"health": reflect.TypeFor[health.Report]()}, &got)
		for _, f := range got {
			if !slices.Contains(doc, f) {
				t.Errorf("%s returns %q, which the README does not explain", tc.section, f)
			}
		}
		for _, f := range doc {
			if !slices.Contains(got, f) {
				t.Errorf("the README explains %q under %s, which it does not return", f, tc.section)
			}
		}
	}
}

// documentedFields are the names in the first column of the field table
// of a README section: `a`, `b.c` and `d[].e`.
func documentedFields(t *testing.T, readme, section string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, section+"\n")
	if !ok {
		t.Fatalf("rpc/README.md has no section %s", section)
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	var fields []string
	name := regexp.MustCompile("`([a-z_.\\[\\]]+)`")
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			fields = append(fields, m[1])
		}
	}
	if len(fields) == 0 {
		t.Fatalf("no field table under %s", section)
	}
	return fields
}

// jsonFields lists the JSON field paths of t: "a", "b.c", "d[].e".
// override gives the type behind a field declared as any.
func jsonFields(t reflect.Type, prefix string, override map[string]reflect.Type, out *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		if o, ok := override[path]; ok {
			ft = o
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			jsonFields(ft, prefix, override, out) // embedded: its fields are this level's
		case ft.Kind() == reflect.Struct:
			jsonFields(ft, path+".", override, out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			jsonFields(ft.Elem(), path+"[].", override, out)
		default:
			*out = append(*out, path)
		}
	}
}
