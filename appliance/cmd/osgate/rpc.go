package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/apikey"
)

// rpcCmd calls one JSON-RPC method and prints the result as indented JSON.
// The service's address and the state dir holding the local key come, in
// this order, from -url and -state, from the config file (-c, default
// $OSGATE_CONFIG: its rpc.listen, TLS certificate and gateway.state_dir),
// from $OSGATE_RPC_URL, and from the defaults of a gateway started here.
func rpcCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "hash-key":
			if len(args) != 2 {
				return usageError{"rpc hash-key needs one KEY"}
			}
			fmt.Fprintln(stdout, apikey.Hash(args[1]))
			return nil
		case "keygen":
			if len(args) != 2 {
				return usageError{"rpc keygen needs one KEYFILE"}
			}
			return configCmd(args, stdout) // the same key pair as for configs and releases
		case "sign":
			return rpcSign(args[1:], stdout)
		}
	}
	fs := flag.NewFlagSet("rpc", flag.ContinueOnError)
	cfgFile := fs.String("c", os.Getenv("OSGATE_CONFIG"), "the gateway's config file: call it at its rpc.listen, with the key in its state dir")
	url := fs.String("url", "", "RPC service URL (default: from -c, else $OSGATE_RPC_URL, else http://127.0.0.1:8080)")
	key := fs.String("key", os.Getenv("OSGATE_RPC_KEY"), "API key (default $OSGATE_RPC_KEY, else the gateway's local key in its state dir)")
	state := fs.String("state", "", "state dir of a gateway on this machine, for its local key (default: from -c, else "+defaultStateDir()+")")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{"rpc needs METHOD and optional PARAMS (a JSON object)"}
	}
	method := fs.Arg(0)
	var params any
	if fs.NArg() == 2 {
		raw := json.RawMessage(fs.Arg(1))
		if !json.Valid(raw) {
			return fmt.Errorf("rpc: PARAMS is not valid JSON: %s", fs.Arg(1))
		}
		params = raw
	}
	t, err := rpcTarget(*cfgFile, *url, *state)
	if err != nil {
		return err
	}
	keyFrom := "-key"
	if *key != "" && os.Getenv("OSGATE_RPC_KEY") == *key {
		keyFrom = "$OSGATE_RPC_KEY"
	}
	if *key == "" {
		file := filepath.Join(t.state, appliance.LocalKeyFile)
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("rpc: no key: give -key or $OSGATE_RPC_KEY, or run where the gateway's state dir (%s) is readable: %v", t.stateFrom, err)
		}
		*key, keyFrom = strings.TrimSpace(string(b)), file
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := rpc.NewClient(t.url, *key, t.tls)
	defer c.Close()
	var result json.RawMessage
	if err := c.Call(ctx, method, params, &result); err != nil {
		var rerr *rpc.Error
		if errors.As(err, &rerr) {
			return fmt.Errorf("rpc %s at %s: %w", method, endpoint(t.url), err)
		}
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is said below
		} else {
			err = errors.New(strings.TrimPrefix(err.Error(), "rpc: "+method+": "))
		}
		return fmt.Errorf("rpc %s at %s (the URL from %s, the key from %s): %w", method, endpoint(t.url), t.urlFrom, keyFrom, err)
	}
	var pretty any
	if err := json.Unmarshal(result, &pretty); err != nil {
		return fmt.Errorf("rpc: result is not JSON: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(pretty)
}

// endpoint is the URL the client posts to: a service root gets "/rpc",
// as rpc.NewClient does.
func endpoint(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/rpc"
	}
	return u.String()
}

// target is where `osgate rpc` calls, and why there.
type target struct {
	url, urlFrom     string
	state, stateFrom string
	tls              *tls.Config
}

// rpcTarget works out the service URL and the state dir from the flags
// (url and state, "" when not given) and the config file (cfgFile, "" for
// none).
func rpcTarget(cfgFile, url, state string) (target, error) {
	t := target{url: url, urlFrom: "-url", state: state, stateFrom: "-state " + state}
	if cfgFile != "" {
		cfg, err := config.Load(cfgFile)
		if err != nil {
			return t, fmt.Errorf("rpc: %w", err)
		}
		if t.state == "" {
			t.state, t.stateFrom = cfg.Gateway.StateDir, "gateway.state_dir in "+cfgFile+": "+cfg.Gateway.StateDir
		}
		if t.url == "" {
			if t.url, t.tls, err = serviceURL(cfg.RPC); err != nil {
				return t, fmt.Errorf("rpc: %s: %w", cfgFile, err)
			}
			t.urlFrom = "rpc.listen in " + cfgFile
		}
	}
	if t.url == "" {
		t.url, t.urlFrom = envOr("OSGATE_RPC_URL", "http://127.0.0.1:8080"), "the default"
		if os.Getenv("OSGATE_RPC_URL") != "" {
			t.urlFrom = "$OSGATE_RPC_URL"
		}
	}
	if t.state == "" {
		t.state = defaultStateDir()
		t.stateFrom = "the default " + t.state
	}
	return t, nil
}

// serviceURL is the URL a client on the gateway's machine calls the RPC
// service of rc at, and the TLS config that trusts its certificate.
func serviceURL(rc config.RPC) (string, *tls.Config, error) {
	if rc.Listen == config.RPCOff {
		return "", nil, errors.New(`rpc.listen is "off": that gateway serves no JSON-RPC over HTTP`)
	}
	host, port, err := net.SplitHostPort(rc.Listen)
	if err != nil {
		return "", nil, fmt.Errorf("rpc.listen %q: %w", rc.Listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1" // every interface: this machine's loopback is one
	case "::":
		host = "::1"
	}
	if rc.CertFile == "" {
		return "http://" + net.JoinHostPort(host, port), nil, nil
	}
	// The gateway's certificate is often self-signed: trust it as it is,
	// and check the name it was made for.
	pemData, err := os.ReadFile(rc.CertFile)
	if err != nil {
		return "", nil, fmt.Errorf("rpc.cert_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return "", nil, fmt.Errorf("rpc.cert_file %s holds no PEM certificate", rc.CertFile)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if blk, _ := pem.Decode(pemData); blk != nil {
		if leaf, err := x509.ParseCertificate(blk.Bytes); err == nil && leaf.VerifyHostname(host) != nil && len(leaf.DNSNames) > 0 {
			tc.ServerName = leaf.DNSNames[0] // made for a name, reached at an address
		}
	}
	return "https://" + net.JoinHostPort(host, port), tc, nil
}

// defaultStateDir is where a gateway started here keeps its state.
func defaultStateDir() string {
	if d := os.Getenv(config.EnvStateDir); d != "" {
		return d
	}
	if _, err := os.Stat("/perm/osgate"); err == nil {
		return "/perm/osgate"
	}
	return "state"
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
