package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseBinaryRefusesTestHook builds osgate as a release is built (no
// build tags) and as the VM test image is (tag testhook), and validates a
// config that names the testhook connector, whose commands delete files
// and kill the gateway. The release binary refuses the type and lists no
// test driver among the known ones; the tagged binary takes it and still
// lists none. The Raspberry Pi image is built without the tag, the amd64
// test image with it.
func TestReleaseBinaryRefusesTestHook(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hook.json")
	if err := os.WriteFile(cfg, []byte(`{"gateway":{"id":"gw-1","state_dir":"`+dir+`"},
		"connectors":[{"name":"hook","type":"testhook","devices":[{"name":"hook"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.json")
	if err := os.WriteFile(unknown, []byte(`{"gateway":{"id":"gw-1","state_dir":"`+dir+`"},
		"connectors":[{"name":"x","type":"nope","devices":[{"name":"x"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(tags string) string {
		t.Helper()
		bin := filepath.Join(dir, "osgate-"+tags)
		cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, ".")
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
		}
		return bin
	}
	validate := func(bin, file string) (string, error) {
		out, err := exec.Command(bin, "validate", file).CombinedOutput()
		return string(out), err
	}

	release := build("")
	out, err := validate(release, cfg)
	if err == nil || !strings.Contains(out, `connectors[0].type: unknown connector type "testhook"`) {
		t.Errorf("release binary on a testhook config: %v\n%s", err, out)
	}
	if known := out[strings.Index(out, "(known:")+1:]; strings.Contains(known, "test") {
		t.Errorf("release binary lists a test driver: %s", out)
	}

	tagged := build("testhook")
	if out, err := validate(tagged, cfg); err != nil {
		t.Errorf("binary built with testhook refuses the testhook config: %v\n%s", err, out)
	}
	out, err = validate(tagged, unknown)
	if err == nil || !strings.Contains(out, "(known: ") || strings.Contains(out, "testhook") {
		t.Errorf("binary built with testhook, unknown type: %v\n%s; want the known types without testhook", err, out)
	}

	for _, img := range []struct {
		config string
		tagged bool
	}{{"../../../image/rpi/config.json", false}, {"../../../image/amd64/config.json", true}} {
		b, err := os.ReadFile(img.config)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(b), `"testhook"`); has != img.tagged {
			t.Errorf("%s builds osgate with the tag testhook: %v, want %v", img.config, has, img.tagged)
		}
	}
}
