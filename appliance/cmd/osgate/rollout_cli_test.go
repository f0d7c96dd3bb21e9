package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
