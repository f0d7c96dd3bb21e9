//go:build testhook

// Package testhook is a connector that exists for tests of the whole
// appliance (image/vmtest): it lets a test on the host make the gateway's
// poll loop hang, or the gateway process die, through the JSON-RPC service,
// and so show that the watchdog and the supervisor bring the gateway back.
//
// It is built only with the build tag testhook: `make test` and the amd64
// VM test image (image/amd64/config.json) carry it; the release binary and
// the Raspberry Pi image do not, so no configuration can name it there.
//
// It is harmless when nobody calls its commands: every poll returns one
// reading per channel (default one channel, "polls") counting the polls of
// the device. But do not put it in a production config: "hang" and "crash"
// do what they say.
//
//	{"name": "hook", "type": "testhook",
//	 "settings": {"hang_file": "/perm/osgate/testhook.hang"},
//	 "devices": [{"name": "hook", "interval": "1s"}]}
//
// Commands (connector.command over JSON-RPC):
//
//	hang     create the hang file: every poll then blocks, ignoring its
//	         context, until the file is gone (a driver stuck in I/O)
//	release  remove the hang file
//	crash    kill the gateway process with SIGKILL (a crash the process
//	         cannot clean up after)
//
// The hang lives in a file, not in memory, so it survives the restart the
// watchdog causes: a test sees the restarted gateway hang again and release
// it when it has seen what it wanted.
package testhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

func init() { core.RegisterTestOnly("testhook", New) }

// defaultHangFile is the hang file's name inside the state dir.
const defaultHangFile = "testhook.hang"

// hangCheck is how often a hanging poll looks whether the file is gone.
const hangCheck = 200 * time.Millisecond

type settings struct {
	// HangFile: while it exists, every poll blocks (default
	// <state dir>/testhook.hang).
	HangFile string `json:"hang_file"`
}

// Connector is the test hook.
type Connector struct {
	hangFile string
	polls    atomic.Int64
	kill     func() error // kills the process; tests replace it
}

// New builds the test hook connector.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	var s settings
	var es strict.Errors
	if len(cfg.Settings) > 0 {
		es.Merge("settings", strict.Decode(cfg.Settings, &s))
	}
	for i, d := range cfg.Devices {
		if len(d.Settings) > 0 && string(d.Settings) != "{}" {
			var none struct{}
			es.Merge(strict.Index("devices", i), strict.Decode(d.Settings, &none))
		}
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	if s.HangFile == "" {
		if cfg.StateDir == "" {
			return nil, errors.New("settings.hang_file: required when the gateway has no state dir")
		}
		s.HangFile = filepath.Join(cfg.StateDir, defaultHangFile)
	}
	if !filepath.IsAbs(s.HangFile) {
		return nil, fmt.Errorf("settings.hang_file: %q must be an absolute path", s.HangFile)
	}
	return &Connector{hangFile: s.HangFile, kill: killSelf}, nil
}

// Poll blocks while the hang file exists, ignoring ctx on purpose (that is
// the fault it stands in for); otherwise it returns the poll count.
func (c *Connector) Poll(ctx context.Context, dev *core.Device) ([]core.Reading, error) {
	for c.hanging() {
		time.Sleep(hangCheck)
	}
	n := c.polls.Add(1)
	now := time.Now()
	if len(dev.Channels) == 0 {
		return []core.Reading{{Device: dev.Name, Channel: "polls", Value: n, Time: now}}, nil
	}
	rs := make([]core.Reading, 0, len(dev.Channels))
	for _, ch := range dev.Channels {
		rs = append(rs, core.Reading{Device: dev.Name, Channel: ch.Name, Value: n, Unit: ch.Unit, Time: now})
	}
	return rs, nil
}

func (c *Connector) hanging() bool {
	_, err := os.Stat(c.hangFile)
	return err == nil
}

// Commands are hang, release and crash (see the package documentation).
func (c *Connector) Commands() map[string]core.Command {
	return map[string]core.Command{
		"hang": {Help: "make every poll block (ignoring its deadline) until release", Run: func(context.Context, json.RawMessage) (any, error) {
			if err := os.WriteFile(c.hangFile, []byte("hang\n"), 0o644); err != nil {
				return nil, fmt.Errorf("testhook: hang: %w", err)
			}
			return map[string]string{"hang_file": c.hangFile}, nil
		}},
		"release": {Help: "let polls return again", Run: func(context.Context, json.RawMessage) (any, error) {
			if err := os.Remove(c.hangFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("testhook: release: %w", err)
			}
			return map[string]string{"hang_file": c.hangFile}, nil
		}},
		"crash": {Help: "kill the gateway process with SIGKILL", Run: func(context.Context, json.RawMessage) (any, error) {
			// Answer first, then die: the caller learns the command arrived.
			go func() {
				time.Sleep(200 * time.Millisecond)
				c.kill()
			}()
			return map[string]int{"pid": os.Getpid()}, nil
		}},
	}
}

// Close releases nothing: the hang file outlives the connector on purpose.
func (c *Connector) Close() error { return nil }

func killSelf() error { return syscall.Kill(os.Getpid(), syscall.SIGKILL) }
