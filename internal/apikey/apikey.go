// Package apikey holds the keys of osgate's JSON-RPC service as the
// configuration lists them: API keys, presented over HTTP, and operator
// keys, which sign requests sent from the cloud (appliance/mqttrpc checks
// those signatures with internal/sign).
//
// It checks the API keys that callers present, and tells the caller's
// name and scope. The
// configuration holds only the SHA-256 of each key; a presented key is
// hashed and compared with every stored digest in constant time, so neither
// the time taken nor an early exit tells a caller how close it came or which
// entry matched. Nothing here ever logs or formats a key.
package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/strict"
)

// emptyDigest is the SHA-256 of the empty string: the digest of
// `printf ” | sha256sum`, a common slip when making a key.
const emptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Key is one accepted key as the configuration holds it: a name for logs,
// the hex SHA-256 of the key, never the key itself, and what the key may
// do ("read", "write" or "admin"; none given: scope.Default, "read").
type Key struct {
	Name   string `json:"name" strict:"required"`
	SHA256 string `json:"sha256" strict:"required"`
	Scope  string `json:"scope"`
}

// Operator is one key that may sign RPC requests sent from the cloud: a
// name for logs, the base64 ed25519 public key (`osgate rpc keygen` prints
// it; the private half stays with the operator), and what its requests may
// do ("read", "write" or "admin"; none given: scope.Default, "read").
type Operator struct {
	Name      string `json:"name" strict:"required"`
	PublicKey string `json:"public_key" strict:"required"`
	Scope     string `json:"scope"`
}

// Set is the accepted keys. The zero value accepts nothing.
type Set struct {
	names   []string
	scopes  []scope.Scope
	digests [][sha256.Size]byte
}

// Hash returns the lowercase hex SHA-256 of key: the value that goes into
// the configuration's api_keys[].sha256.
func Hash(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

// New checks keys and returns the Set that accepts them. Problems are
// returned as strict.Errors with paths relative to the list ("[1].sha256"),
// so the caller can prefix them ("rpc.api_keys").
func New(keys []Key) (*Set, error) {
	var es strict.Errors
	s := &Set{}
	names := map[string]int{}
	digests := map[string]int{}
	for i, k := range keys {
		at := strict.Index("", i)
		if strings.TrimSpace(k.Name) == "" {
			es.Add(strict.Join(at, "name"), "must not be empty")
		} else if j, dup := names[k.Name]; dup {
			es.Add(strict.Join(at, "name"), "%q is already the name of key %d", k.Name, j)
		} else {
			names[k.Name] = i
		}
		sc, err := scope.Parse(k.Scope)
		if err != nil {
			es.Add(strict.Join(at, "scope"), "%v", err)
		}
		hexDigest := strings.ToLower(strings.TrimSpace(k.SHA256))
		var d [sha256.Size]byte
		if len(hexDigest) != hex.EncodedLen(sha256.Size) || decodeInto(d[:], hexDigest) != nil {
			es.Add(strict.Join(at, "sha256"), "must be 64 hex digits (the SHA-256 of the key: osgate rpc hash-key, or printf %%s KEY | sha256sum)")
			continue
		}
		if hexDigest == emptyDigest {
			es.Add(strict.Join(at, "sha256"), "is the SHA-256 of an empty key; hash the key itself (printf %%s KEY | sha256sum)")
			continue
		}
		if j, dup := digests[hexDigest]; dup {
			es.Add(strict.Join(at, "sha256"), "is the same key as key %d", j)
			continue
		}
		digests[hexDigest] = i
		s.names = append(s.names, k.Name)
		s.scopes = append(s.scopes, sc)
		s.digests = append(s.digests, d)
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Len is the number of accepted keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.digests)
}

// Check reports whether key is one of the accepted keys, with its name
// and scope. It compares against every stored digest, whatever matches, in
// constant time. An empty key is never accepted.
func (s *Set) Check(key string) (name string, sc scope.Scope, ok bool) {
	if s == nil || key == "" {
		return "", scope.None, false
	}
	return s.CheckDigest(Digest(key))
}

// Digest is the SHA-256 of key, what CheckDigest takes: a session that
// holds it, not the key, can ask again later whether the key is still
// accepted, and with what scope (the configuration may have changed).
func Digest(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// CheckDigest is Check for a key known by its Digest.
func (s *Set) CheckDigest(d [sha256.Size]byte) (name string, sc scope.Scope, ok bool) {
	if s == nil {
		return "", scope.None, false
	}
	match, index := 0, 0
	for i := range s.digests {
		eq := subtle.ConstantTimeCompare(d[:], s.digests[i][:])
		index = subtle.ConstantTimeSelect(eq&^match, i, index)
		match |= eq
	}
	if match == 0 {
		return "", scope.None, false
	}
	return s.names[index], s.scopes[index], true
}

func decodeInto(dst []byte, h string) error {
	_, err := hex.Decode(dst, []byte(h))
	return err
}
