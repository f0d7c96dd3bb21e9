//go:build testhook

package testhook

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

func newHook(t *testing.T, settings string) *Connector {
	t.Helper()
	c, err := New(core.ConnectorConfig{Name: "hook", Type: "testhook", Settings: json.RawMessage(settings),
		StateDir: t.TempDir(), Devices: []*core.Device{{Name: "d", Settings: json.RawMessage("{}")}}})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Connector)
}

func run(t *testing.T, c *Connector, name string) {
	t.Helper()
	if _, err := c.Commands()[name].Run(context.Background(), json.RawMessage("{}")); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestPollCounts(t *testing.T) {
	c := newHook(t, "")
	dev := &core.Device{Name: "d"}
	for want := int64(1); want <= 3; want++ {
		rs, err := c.Poll(context.Background(), dev)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Channel != "polls" || rs[0].Value != want || rs[0].Quality != core.Good {
			t.Fatalf("poll %d: %+v", want, rs)
		}
	}
	rs, err := c.Poll(context.Background(), &core.Device{Name: "d", Channels: []*core.Channel{{Name: "a", Unit: "1"}, {Name: "b"}}})
	if err != nil || len(rs) != 2 || rs[0].Channel != "a" || rs[0].Unit != "1" || rs[1].Channel != "b" {
		t.Fatalf("poll with channels: %+v %v", rs, err)
	}
}

// TestHangIgnoresContext: a hung poll outlives its deadline and returns
// only after release, as a driver stuck in I/O would.
func TestHangIgnoresContext(t *testing.T) {
	c := newHook(t, "")
	run(t, c, "hang")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.Poll(ctx, &core.Device{Name: "d"}); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("poll returned while hanging: %v", err)
	case <-time.After(time.Second):
	}
	run(t, c, "release")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("poll still blocked 30 s after release")
	}
	run(t, c, "release") // releasing twice is fine
}

func TestCrashKills(t *testing.T) {
	c := newHook(t, "")
	killed := make(chan struct{})
	c.kill = func() error { close(killed); return nil }
	run(t, c, "crash")
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("crash did not kill")
	}
}

func TestSettings(t *testing.T) {
	f := filepath.Join(t.TempDir(), "h")
	c := newHook(t, `{"hang_file":"`+f+`"}`)
	run(t, c, "hang")
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("hang did not create the configured file: %v", err)
	}
	for _, tc := range []struct{ settings, want string }{
		{`{"hang_file":"rel"}`, "absolute"},
		{`{"hang_fil":"/x"}`, "hang_fil"},
	} {
		_, err := New(core.ConnectorConfig{Settings: json.RawMessage(tc.settings), StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("settings %s: error %v, want it to mention %q", tc.settings, err, tc.want)
		}
	}
}
