package mqttrpc

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/sign"
)

// signedPrefix starts the bytes an operator signs; a new layout gets a new
// version.
const signedPrefix = "osgate-rpc-request-v1\n"

// SignedBytes are what an operator key signs for one request: the
// gateway's id, the request id (the last level of the request topic), the
// "expires" string exactly as the envelope carries it, and the request
// exactly as the envelope carries it (its method, params and JSON-RPC
// id), one per line after a version line:
//
//	osgate-rpc-request-v1
//	gateway gw-0001
//	id 3f2b8c1e-6a4d-4c1b-9a7e-1d2c3b4a5f60
//	expires 2026-11-25T14:05:00Z
//	{"jsonrpc":"2.0","method":"device.read","params":{"device":"meter-1"},"id":1}
//
// (no newline after the request). A signature thus holds for one request,
// on one gateway, under one request id, until it expires.
func SignedBytes(gatewayID, id, expires string, request []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(signedPrefix) + len(gatewayID) + len(id) + len(expires) + len(request) + 32)
	b.WriteString(signedPrefix)
	b.WriteString("gateway " + gatewayID + "\n")
	b.WriteString("id " + id + "\n")
	b.WriteString("expires " + expires + "\n")
	b.Write(request)
	return b.Bytes()
}

// Sign makes the payload of a request message for the topic
// rpc/{gatewayID}/request/{id}: request (a JSON-RPC 2.0 object or batch)
// in an envelope signed with the operator key priv, which the gateway
// knows as signer (rpc.operator_keys[].name), valid until expires (at
// most an hour ahead of the gateway's clock).
func Sign(priv ed25519.PrivateKey, signer, gatewayID, id string, expires time.Time, request []byte) ([]byte, error) {
	switch {
	case len(priv) != ed25519.PrivateKeySize:
		return nil, errors.New("mqttrpc: sign: not an ed25519 private key")
	case signer == "" || len(signer) > maxSigner:
		return nil, fmt.Errorf("mqttrpc: sign: signer must be 1 to %d bytes (the operator key's name on the gateway)", maxSigner)
	case gatewayID == "" || strings.ContainsAny(gatewayID, "/+#\x00\n"):
		return nil, fmt.Errorf("mqttrpc: sign: gateway id %q must be one MQTT topic level", gatewayID)
	case !validID(id):
		return nil, fmt.Errorf("mqttrpc: sign: request id %q must be 1 to %d of A-Z a-z 0-9 . _ -", id, maxID)
	}
	// The gateway verifies the request's exact bytes: compact them, since
	// that is how they go into the envelope.
	var req bytes.Buffer
	if err := json.Compact(&req, request); err != nil {
		return nil, fmt.Errorf("mqttrpc: sign: the request is not JSON: %w", err)
	}
	if c := first(req.Bytes()); c != '{' && c != '[' {
		return nil, errors.New("mqttrpc: sign: the request must be a JSON-RPC 2.0 object or a batch (array)")
	}
	exp := expires.UTC().Format(time.RFC3339)
	sig := bytes.TrimSpace(sign.Sign(priv, SignedBytes(gatewayID, id, exp, req.Bytes())))
	name, err := json.Marshal(signer)
	if err != nil {
		return nil, fmt.Errorf("mqttrpc: sign: %w", err)
	}
	// Written by hand: json.Marshal would escape "<", ">" and "&" in the
	// request and so change the bytes that were signed.
	var out bytes.Buffer
	out.WriteString(`{"signer":`)
	out.Write(name)
	out.WriteString(`,"expires":"` + exp + `","request":`)
	out.Write(req.Bytes())
	out.WriteString(`,"signature":"`)
	out.Write(sig)
	out.WriteString(`"}`)
	return out.Bytes(), nil
}

// operator is one accepted operator key.
type operator struct {
	pub   ed25519.PublicKey
	scope scope.Scope
}

// verify checks env's signature by pub for the request id on this
// gateway. The error says what a signature must cover, never what it is.
func verify(pub ed25519.PublicKey, gatewayID, id string, env envelope) error {
	err := sign.Verify(pub, SignedBytes(gatewayID, id, env.expiresText, env.request), []byte(env.signature))
	if err != nil {
		return fmt.Errorf("the signature does not match this request: it must be made with the operator key %q over gateway %q, request id %q, "+
			"\"expires\" and \"request\" exactly as sent (osgate rpc sign makes it)", env.signer, gatewayID, id)
	}
	return nil
}
