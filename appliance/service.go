package appliance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/mqttrpc"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/appliance/ui"
	"github.com/osgate/osgate/config"
)

// startRPC starts the JSON-RPC service on its two transports: HTTP on
// rpc.listen (a taken port fails the start, with the address named; "off"
// disables it) with the API keys, and MQTT through the local broker for
// calls from the cloud, signed with the operator keys (on whenever
// rpc.operator_keys or rpc.api_keys holds keys: an API key in a request
// over MQTT, as earlier versions took them, is refused naming the fix).
// Both serve until ctx ends.
func (g *Gateway) startRPC(ctx context.Context, cfg *config.Config, brokerURL string, errc chan<- error, wg *sync.WaitGroup) error {
	rc := cfg.RPC
	httpOn := rc.Listen != config.RPCOff && rc.Listen != ""
	mqttOn := len(rc.OperatorKeys) > 0 || len(rc.APIKeys) > 0
	if !httpOn && !mqttOn {
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
		Version: Version,
	})
	if err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	g.registerMethods(s)
	// The technician's pages, on the same listener and keys; / leads
	// to them.
	s.Route("/ui/", ui.New(ui.Options{RPC: s, Sessions: g.sessions, MaxBody: rc.MaxBody, Logger: g.log.With("part", "ui")}))
	s.Route("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
	g.mu.Lock()
	g.rpcServer = s
	g.mu.Unlock()
	g.registerCommands()
	if httpOn {
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
	}
	if !mqttOn {
		g.log.Info("JSON-RPC over MQTT off: rpc.operator_keys is empty")
		return nil
	}
	user, password, err := g.brokerLogin(cfg, config.BrokerRPCUser)
	if err != nil {
		return fmt.Errorf("rpc over mqtt: %w", err)
	}
	r, err := mqttrpc.New(mqttrpc.Options{
		URL:       brokerURL,
		Username:  user,
		Password:  password,
		GatewayID: cfg.Gateway.ID,
		Operators: rc.OperatorKeys,
		Server:    s,
		StateDir:  cfg.Gateway.StateDir,
		MaxBody:   rc.MaxBody,
		Logger:    g.log.With("part", "rpc-mqtt"),
	})
	if err != nil {
		return fmt.Errorf("rpc over mqtt: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("JSON-RPC over MQTT stopped", "err", err)
		}
	}()
	return nil
}
