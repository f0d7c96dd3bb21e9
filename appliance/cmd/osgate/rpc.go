package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
)

// rpcCmd calls one JSON-RPC method and prints the result as indented JSON.
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
	url := fs.String("url", envOr("OSGATE_RPC_URL", "http://127.0.0.1:8080"), "RPC service URL")
	key := fs.String("key", os.Getenv("OSGATE_RPC_KEY"), "API key (default $OSGATE_RPC_KEY, else the gateway's local key in -state)")
	state := fs.String("state", defaultStateDir(), "state dir of a gateway on this machine, for its local key")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{"rpc needs METHOD and optional PARAMS (a JSON object)"}
	}
	var params any
	if fs.NArg() == 2 {
		raw := json.RawMessage(fs.Arg(1))
		if !json.Valid(raw) {
			return fmt.Errorf("rpc: PARAMS is not valid JSON: %s", fs.Arg(1))
		}
		params = raw
	}
	if *key == "" {
		b, err := os.ReadFile(filepath.Join(*state, appliance.LocalKeyFile))
		if err != nil {
			return fmt.Errorf("rpc: no key: give -key or $OSGATE_RPC_KEY, or run where the gateway's state dir is readable (%v)", err)
		}
		*key = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := rpc.NewClient(*url, *key, nil)
	defer c.Close()
	var result json.RawMessage
	if err := c.Call(ctx, fs.Arg(0), params, &result); err != nil {
		return err
	}
	var pretty any
	if err := json.Unmarshal(result, &pretty); err != nil {
		return fmt.Errorf("rpc: result is not JSON: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(pretty)
}

// defaultStateDir is where a gateway started here keeps its state.
func defaultStateDir() string {
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
