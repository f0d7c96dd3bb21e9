package main

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/osgate/osgate/appliance/mqttrpc"
	"github.com/osgate/osgate/internal/sign"
)

const rpcSignUsage = "rpc sign -key KEYFILE -signer NAME -gateway ID [-id REQUEST-ID] [-expires 5m] METHOD [PARAMS]"

// stderr is where rpc sign names the topic to publish on (tests swap it).
var stderr io.Writer = os.Stderr

// rpcSign prints a signed request for the cloud: the payload to publish on
// rpc/{gateway}/request/{id} (see appliance/mqttrpc/README.md); the topic
// goes to stderr, so that stdout can be piped to mosquitto_pub -s.
func rpcSign(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rpc sign", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFile := fs.String("key", "", "the operator's private key file (from osgate rpc keygen)")
	signer := fs.String("signer", "", "the key's name in the gateway's rpc.operator_keys")
	gateway := fs.String("gateway", "", "the gateway's id (gateway.id)")
	id := fs.String("id", "", "the request id, new for every request (default: a random UUID)")
	ttl := fs.Duration("expires", 5*time.Minute, "how long the request stays valid (at most 1h)")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%v\n%s", err, rpcSignUsage)}
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || *keyFile == "" || *signer == "" || *gateway == "" {
		return usageError{rpcSignUsage}
	}
	if *ttl <= 0 || *ttl > time.Hour {
		return usageError{fmt.Sprintf("rpc sign: -expires %s: must be more than 0 and at most 1h (the gateway refuses more)", *ttl)}
	}
	text, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("rpc sign: read key: %w", err)
	}
	priv, err := sign.ParsePrivateKey(string(text))
	if err != nil {
		return fmt.Errorf("rpc sign: %s: %w", *keyFile, err)
	}
	req := map[string]any{"jsonrpc": "2.0", "method": fs.Arg(0), "id": 1}
	if fs.NArg() == 2 {
		raw := json.RawMessage(fs.Arg(1))
		if !json.Valid(raw) {
			return fmt.Errorf("rpc sign: PARAMS is not valid JSON: %s", fs.Arg(1))
		}
		req["params"] = raw
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc sign: %w", err)
	}
	if *id == "" {
		*id = newUUID()
	}
	payload, err := mqttrpc.Sign(priv, *signer, *gateway, *id, time.Now().Add(*ttl), body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "publish on rpc/%s/request/%s; the answer comes on rpc/%s/response/%s\n", *gateway, *id, *gateway, *id)
	_, err = fmt.Fprintf(stdout, "%s\n", payload)
	return err
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
