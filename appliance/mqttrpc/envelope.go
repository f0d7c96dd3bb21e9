package mqttrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
)

// envelope is one request message: who signed it, when the request stops
// being valid, the JSON-RPC 2.0 request (an object or a batch), kept byte
// for byte for the signature and rpc.Server.Handle, and the signature.
//
//	{"signer": "ops-alice", "expires": "2026-11-25T14:00:00Z",
//	 "request": {"jsonrpc": "2.0", …}, "signature": "…base64…"}
type envelope struct {
	signer      string
	expiresText string // as the envelope has it: it is what was signed
	expires     time.Time
	request     json.RawMessage
	signature   string
}

// maxID bounds a request id (the last topic level).
const maxID = 64

// maxSigner bounds the length of a signer's name.
const maxSigner = 128

// members are an envelope's members, each required once.
var members = []string{"signer", "expires", "request", "signature"}

// errBearer refuses the envelope of earlier versions, which carried an
// API key in clear text in its "key" member.
var errBearer = &rpc.Error{Code: rpc.CodeUnauthorized, Message: `unauthorized: an API key in the envelope ("key") is no longer ` +
	`accepted over MQTT: sign the request with an operator key instead (osgate rpc sign; the gateway lists the public key in rpc.operator_keys)`}

// parseEnvelope decodes a request message. Every problem is an *rpc.Error
// to answer with: -32700 when the payload is not JSON, -32600 when it is
// not an envelope, -32001 for the old envelope with an API key (whose
// value no error ever carries). The signature is checked later
// (Responder.check), against the topic's gateway and request id.
func parseEnvelope(payload []byte) (envelope, *rpc.Error) {
	var env envelope
	if !json.Valid(payload) {
		return env, &rpc.Error{Code: rpc.CodeParseError, Message: "parse error: the payload is not valid JSON"}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return env, invalid(`the payload must be a JSON object with "signer", "expires", "request" and "signature"`)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return env, invalid("unreadable member name")
		}
		name, _ := tok.(string) // object keys are always strings in valid JSON
		if name == "key" {
			return env, errBearer
		}
		if seen[name] {
			return env, invalid(fmt.Sprintf("member %.64q given twice", name))
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return env, invalid(fmt.Sprintf("unreadable value of %.64q", name))
		}
		if e := env.set(name, raw); e != nil {
			return env, e
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return env, invalid("unreadable end of object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return env, invalid("more than one JSON value in the payload")
	}
	var missing []string
	for _, m := range members {
		if !seen[m] {
			missing = append(missing, fmt.Sprintf("%q", m))
		}
	}
	if len(missing) > 0 {
		return env, invalid("missing member " + strings.Join(missing, ", "))
	}
	return env, nil
}

// set stores one member of the envelope.
func (env *envelope) set(name string, raw json.RawMessage) *rpc.Error {
	switch name {
	case "signer":
		if json.Unmarshal(raw, &env.signer) != nil || first(raw) != '"' || env.signer == "" || len(env.signer) > maxSigner {
			return invalid(`"signer" must be the name of an operator key (a string of 1 to 128 bytes)`)
		}
	case "expires":
		var s string
		if json.Unmarshal(raw, &s) != nil || first(raw) != '"' {
			return invalid(`"expires" must be an RFC 3339 time string like "2026-11-25T14:00:00Z"`)
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return invalid(fmt.Sprintf(`"expires" %.40q is not an RFC 3339 time like "2026-11-25T14:00:00Z"`, s))
		}
		env.expiresText, env.expires = s, t
	case "request":
		if first(raw) != '{' && first(raw) != '[' {
			return invalid(`"request" must be a JSON-RPC 2.0 request object or a batch (array)`)
		}
		env.request = raw
	case "signature":
		if json.Unmarshal(raw, &env.signature) != nil || first(raw) != '"' || env.signature == "" {
			return invalid(`"signature" must be the base64 ed25519 signature (a string)`)
		}
	default:
		return invalid(fmt.Sprintf(`unknown member %.64q: an envelope has exactly "signer", "expires", "request" and "signature"`, name))
	}
	return nil
}

// first is the first byte of a JSON value, 0 if there is none.
func first(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func invalid(msg string) *rpc.Error {
	return &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "invalid envelope: " + msg}
}

// requestID returns the id of a request topic (prefix + id), and whether it
// is one: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'.
func requestID(topic, prefix string) (string, bool) {
	id, ok := strings.CutPrefix(topic, prefix)
	if !ok || !validID(id) {
		return "", false
	}
	return id, true
}

func validID(id string) bool {
	if id == "" || len(id) > maxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
