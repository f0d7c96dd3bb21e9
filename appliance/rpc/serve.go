package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the HTTP service.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 2 * time.Minute
	callTimeout       = writeTimeout - 10*time.Second // a slow method's context ends in time to answer
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 5 * time.Second
)

// Serve listens on listen (e.g. "127.0.0.1:8080") and serves Handler until
// ctx ends, then shuts down gracefully. With certFile and keyFile it serves
// HTTPS. A listen failure (the port is taken) is returned at once, naming
// the address.
func (s *Server) Serve(ctx context.Context, listen, certFile, keyFile string) error {
	cfg, err := loadTLS(certFile, keyFile)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("rpc: listen on %s: %w (another program may hold the port; change rpc.listen)", listen, err)
	}
	return s.serve(ctx, l, cfg)
}

// ServeListener is Serve on a listener the caller opened (socket
// activation, tests); it closes l.
func (s *Server) ServeListener(ctx context.Context, l net.Listener, certFile, keyFile string) error {
	cfg, err := loadTLS(certFile, keyFile)
	if err != nil {
		l.Close()
		return err
	}
	return s.serve(ctx, l, cfg)
}

func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("rpc: TLS needs both a certificate file and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("rpc: load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (s *Server) serve(ctx context.Context, l net.Listener, cfg *tls.Config) error {
	addr := l.Addr().String()
	hs := &http.Server{
		Handler:           s.http,
		TLSConfig:         cfg,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("rpc: serving", "addr", addr, "tls", cfg != nil, "api_keys", s.keys.Len())
	if s.keys.Len() == 0 {
		s.log.Warn("rpc: no API keys configured: every /rpc call is refused; make one with `osgate rpc hash-key` and add it to rpc.api_keys")
	}
	errc := make(chan error, 1)
	go func() {
		if cfg != nil {
			errc <- hs.ServeTLS(l, "", "")
		} else {
			errc <- hs.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("rpc: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("rpc: shutdown: closing connections still busy", "addr", addr, "err", err)
		hs.Close()
	}
	<-errc
	s.log.Info("rpc: stopped", "addr", addr)
	return nil
}
