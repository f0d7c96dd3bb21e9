// Package apptest runs a whole gateway inside a test: the drivers'
// end-to-end tests start one on a configuration they write, against their
// real peers.
package apptest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// Start parses doc, runs the gateway until the test ends and waits until
// its RPC service answers on rpcAddr. It returns the gateway and its log
// (info and up), which is also shown when the test fails; an error from
// Run fails the test.
func Start(t testing.TB, doc, rpcAddr string) (*appliance.Gateway, *testpeer.Buffer) {
	t.Helper()
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	g, err := appliance.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	testpeer.WaitTCP(t, rpcAddr, 30*time.Second)
	return g, logs
}
