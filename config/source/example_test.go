package source_test

import (
	"context"
	"log/slog"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
)

// The gateway's config loop: the first Next is the starting configuration,
// every later one a change to apply. A change that leaves the gateway
// unhealthy is rolled back by the gateway and reported with MarkBad.
func Example() {
	ctx := context.Background()
	src, err := source.New(source.Options[*config.Config]{
		LocalPath: "/perm/osgate/osgate.json",
		StateDir:  "/perm/osgate",
		Gateway:   "gw-0001",
		// From the local file's "remote" block.
		Remote: &source.RemoteSettings{
			URL:       "https://fleet.example/gateways/{gateway}.json",
			PublicKey: "base64 ed25519 public key",
		},
		Validate: config.Parse,
	})
	if err != nil {
		slog.Error("config source", "err", err)
		return
	}
	defer src.Close()
	for {
		u, err := src.Next(ctx)
		if err != nil {
			return
		}
		slog.Info("apply", "source", u.Origin, "version", u.Version, "connectors", len(u.Config.Connectors))
		healthy := true // the one health model, after a grace period
		if !healthy {
			src.MarkBad(u.Version, "unhealthy after apply")
		}
	}
}
