package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/fleet"
	"github.com/osgate/osgate/internal/sign"
)

// TestFleetRolloutUsage: the rollout's flags come before or after
// RELEASE_DIR; a missing channel, a bad share or a second argument is a
// usage error (exit 2) that says what is wrong; a channel without a
// rollout says so (exit 1).
func TestFleetRolloutUsage(t *testing.T) {
	t.Setenv("OSGATE_FLEET", "")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	canary := fs.String("canary", "", "")
	pos, err := parseInterleaved(fs, []string{"rel", "--canary", "5%", "--", "-odd"})
	if err != nil || strings.Join(pos, " ") != "rel -odd" || *canary != "5%" {
		t.Errorf("interleaved: %v %q %q", err, pos, *canary)
	}
	ch := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rel"}, 2, "needs -channel DIR"},
		{[]string{"rel", "-channel", ch, "--canary", "5"}, 1, "read the release"},
		{[]string{"rel", "-channel", ch, "--canary", "105%"}, 2, `-canary: "105%": a share is 0% to 100%`},
		{[]string{"rel", "-channel", ch, "--max-failures", "two"}, 2, `-max-failures: "two": give a share (5%) or a number of gateways (3)`},
		{[]string{"rel", "other", "-channel", ch}, 2, "needs RELEASE_DIR, or status, pause, resume or abort"},
		{[]string{"rel", "-channel", ch, "-step-timeout", "0s"}, 2, "-step-timeout: more than 0"},
		{[]string{"status", "-channel", ch}, 1, "no rollout in " + ch},
		{[]string{"pause", "-channel", ch}, 1, "no rollout in " + ch},
		{[]string{"abort", "-channel", ch}, 1, "no rollout in " + ch},
		{[]string{"resume", "-channel", ch}, 1, "no rollout in " + ch},
	} {
		code, out, errOut := runCLI(append([]string{"fleet", "-f", filepath.Join(ch, "none.json"), "rollout"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("fleet rollout %v: exit %d, want %d and %q\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(ch, "rollout.json")); err == nil {
		t.Error("a refused command wrote a rollout state")
	}
}

// TestFleetConfigUsage: a push needs FILE, -dir, -gateways and -key, and
// says what is wrong with each (exit 2 for usage, 1 for a file or key
// that does not do); a directory without a push says so; a push under
// way is continued only with the key it was started with.
func TestFleetConfigUsage(t *testing.T) {
	t.Setenv("OSGATE_FLEET", "")
	dir := t.TempDir()
	docs := filepath.Join(dir, "docs")
	if err := os.Mkdir(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	keygen := func(name string) string {
		f := filepath.Join(dir, name)
		if code, out, errOut := runCLI("config", "keygen", f); code != 0 {
			t.Fatalf("config keygen: exit %d: %s%s", code, out, errOut)
		}
		return f
	}
	doc := write("cfg.json", `{"gateway": {"id": "{gateway}"}, "connectors": []}`)
	notJSON := write("broken.json", `{"gateway": {"id": "{gateway}"`)
	list := write("list.json", `[]`)
	badKey := write("bad.key", "not a key\n")
	key, other := keygen("config.key"), keygen("other.key")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"push", "-dir", docs}, 2, "needs push FILE, or status, pause, resume or abort"},
		{[]string{"push", doc, "-gateways", "all", "-key", key}, 2, "needs -dir DIR"},
		{[]string{"push", doc, "-dir", docs, "-key", key}, 2, "push needs -gateways"},
		{[]string{"push", doc, "-dir", docs, "-gateways", "all"}, 2, "needs -key KEYFILE"},
		{[]string{"push", doc, "-dir", docs, "-gateways", "site=[", "-key", key}, 2, `selector: "site=["`},
		{[]string{"push", doc, "-dir", docs, "-gateways", "all", "-key", key, "-canary", "105%"}, 2, `push -canary: "105%": a share is 0% to 100%`},
		{[]string{"push", doc, "-dir", docs, "-gateways", "all", "-key", key, "-step-timeout", "0s"}, 2, "-step-timeout: more than 0"},
		{[]string{"push", doc, "-dir", docs, "-gateways", "all", "-key", badKey}, 1, "the config key " + badKey},
		{[]string{"push", filepath.Join(dir, "none.json"), "-dir", docs, "-gateways", "all", "-key", key}, 1, "read the configuration"},
		{[]string{"push", notJSON, "-dir", docs, "-gateways", "all", "-key", key}, 1, "broken.json is not JSON"},
		{[]string{"push", list, "-dir", docs, "-gateways", "all", "-key", key}, 1, "list.json is not a configuration: a JSON object"},
		{[]string{"push", doc, "-dir", filepath.Join(dir, "nope"), "-gateways", "all", "-key", key}, 1, "is not a directory"},
		{[]string{"frob", "-dir", docs}, 2, `unknown command "frob"`},
		{[]string{"status", "-dir", docs}, 1, "no rollout in " + docs},
		{[]string{"pause", "-dir", docs}, 1, "no rollout in " + docs},
		{[]string{"abort", "-dir", docs}, 1, "no rollout in " + docs},
		{[]string{"resume", "-dir", docs}, 2, "needs -key KEYFILE"},
		{[]string{"resume", "-dir", docs, "-key", key}, 1, "no rollout in " + docs},
	} {
		code, out, errOut := runCLI(append([]string{"fleet", "-f", filepath.Join(dir, "none.json"), "config"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("fleet config %v: exit %d, want %d and %q\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(docs, fleet.ConfigPlanFile)); err == nil {
		t.Error("a refused command wrote a push's state")
	}

	// A push under way (nobody drives it): the same file again, or
	// resume, with another key is refused before anything connects.
	text, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.ParsePrivateKey(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.StartConfigPush(fleet.ConfigPushOptions{File: doc, Dir: docs, Selector: "all", Key: priv, StepTimeout: time.Minute}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"push", doc, "-dir", docs, "-gateways", "all", "-key", other},
		{"resume", "-dir", docs, "-key", other},
	} {
		code, out, errOut := runCLI(append([]string{"fleet", "-f", filepath.Join(dir, "none.json"), "config"}, args...)...)
		if code != 1 || !strings.Contains(errOut, "-key is not the key the rollout of config ") {
			t.Errorf("fleet config %v with another key: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	code, out, errOut := runCLI("fleet", "-f", filepath.Join(dir, "none.json"), "config", "push", write("cfg2.json", `{"connectors": []}`),
		"-dir", docs, "-gateways", "all", "-key", key)
	if code != 1 || !strings.Contains(errOut, "is running in "+docs+": let it finish, or `osgate fleet config abort` it first") {
		t.Errorf("another file while a push runs: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("fleet", "config", "abort", "-dir", docs, "-reason", "test")
	if code != 0 || !strings.Contains(out, "aborted by ") {
		t.Errorf("abort: exit %d\n%s%s", code, out, errOut)
	}
}
