package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeTypoExample runs `osgate validate osgate.json` on the typo
// example of examples/README.md and compares what it prints with what the
// README shows, byte for byte.
func TestReadmeTypoExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- typo example[^\n]*\n```json\n(.*?)```\n\n`osgate validate osgate.json` prints[^`]*```\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("examples/README.md has no typo example followed by the output of osgate validate osgate.json")
	}
	doc, want := m[1], string(m[2])
	t.Chdir(t.TempDir())
	if err := os.WriteFile("osgate.json", doc, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli(context.Background(), []string{"validate", "osgate.json"}, nil, &stdout, &stderr)
	if got := stdout.String() + stderr.String(); got != want || code != 1 {
		t.Fatalf("osgate validate osgate.json exited %d and printed:\n%s\nexamples/README.md shows (exit 1):\n%s", code, got, want)
	}
	if n := strings.Count(want, "did you mean"); n < 7 {
		t.Fatalf("the example shows only %d suggestions", n)
	}
}

// TestValidateSummary: a valid file is summed up with plurals that fit.
func TestValidateSummary(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ doc, want string }{
		{`{"connectors":[{"name":"s","type":"system","devices":[{"name":"gw","channels":[{"name":"uptime"}]}]}]}`,
			"valid: 1 connector, 1 device, 1 channel"},
		{`{"connectors":[{"name":"s","type":"system","devices":[{"name":"gw","channels":[{"name":"uptime"},{"name":"cpu_usage"}]},{"name":"gw2"}]},
			{"name":"t","type":"system","enabled":false}]}`,
			"valid: 2 connectors, 2 devices, 2 channels (and the driver's default channels of 1 device)"},
		{`{"connectors":[]}`, "valid: 0 connectors, 0 devices, 0 channels"},
	} {
		f := filepath.Join(dir, "osgate.json")
		if err := os.WriteFile(f, []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := cli(context.Background(), []string{"validate", f}, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if got := stdout.String(); got != f+": "+tc.want+"\n" {
			t.Errorf("got %q, want %q", got, f+": "+tc.want+"\n")
		}
	}
}
