package appliance

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
)

// startRPC opens the JSON-RPC listener (a taken port fails the start, with
// the address named) and serves until ctx ends. "off" disables it.
func (g *Gateway) startRPC(ctx context.Context, cfg *config.Config, errc chan<- error, wg *sync.WaitGroup) error {
	rc := cfg.RPC
	if rc.Listen == "off" || rc.Listen == "" {
		g.log.Info("JSON-RPC service off")
		return nil
	}
	keys, err := g.rpcKeys(cfg)
	if err != nil {
		return err
	}
	s, err := rpc.New(rpc.Options{
		Keys:    keys,
		MaxBody: rc.MaxBody,
		Health:  func() health.Report { return g.health.Report() },
		Logger:  g.log.With("part", "rpc"),
	})
	if err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	g.registerMethods(s)
	l, err := net.Listen("tcp", rc.Listen)
	if err != nil {
		return fmt.Errorf("rpc: listen on %s: %w (is another osgate running? set rpc.listen)", rc.Listen, err)
	}
	g.rpcAddr = l.Addr().String()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.ServeListener(ctx, l, rc.CertFile, rc.KeyFile); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("rpc: %w", err)
		}
	}()
	g.log.Info("JSON-RPC service listening", "addr", g.rpcAddr, "tls", rc.CertFile != "", "keys", len(rc.APIKeys))
	return nil
}
