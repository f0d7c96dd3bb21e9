package config

import "encoding/json"

// RedactJSON returns a copy of a JSON document with the value of every
// key that names a secret (password, secret, token, or a name ending in
// "key") replaced by "***", at any depth; JSON that does not parse is
// replaced as a whole. It is the redaction Redacted applies to driver
// settings, for other JSON that may hold secrets: the params of an RPC
// call written to the log.
func RedactJSON(raw json.RawMessage) json.RawMessage { return redactJSON(raw) }
