// Package fleet is the operator's side of a fleet of osgate gateways: it
// sees every gateway through the retained status documents on the cloud
// broker and runs signed JSON-RPC calls on many gateways at once. It
// connects to the cloud broker only, never to a gateway. `osgate fleet` is its command line;
// docs/fleet.md is the operator's guide.
package fleet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/tlsconf"
)

// Settings are the operator's fleet file (fleet.json): how to reach the
// cloud broker and which operator key signs calls.
type Settings struct {
	// Broker is the cloud broker: ssl:// (TLS), tcp://, wss:// or ws://
	// with host and port.
	Broker string `json:"broker" strict:"required"`
	// Username and Password (or PasswordFile) log in to the broker.
	Username     string `json:"username"`
	Password     string `json:"password"`
	PasswordFile string `json:"password_file"`
	// The TLS keys of every osgate client (internal/tlsconf).
	tlsconf.Client
	// ClientID on the broker (default osgate-fleet- and a random suffix).
	ClientID string `json:"client_id"`
	// OperatorKey is the file of the operator's private key (osgate rpc
	// keygen), Signer its name in the gateways' rpc.operator_keys.
	OperatorKey string `json:"operator_key"`
	Signer      string `json:"signer"`
}

// LoadSettings reads a fleet file strictly; errors name the key.
func LoadSettings(path string) (*Settings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet settings: %w (write one: see docs/fleet.md, or name it with -f)", err)
	}
	var s Settings
	if err := strict.Decode(b, &s); err != nil {
		return nil, fmt.Errorf("fleet settings %s: %w", path, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("fleet settings %s: %w", path, err)
	}
	return &s, nil
}

func (s *Settings) check() error {
	var es strict.Errors
	s.Client.Check(&es, "")
	u, err := url.Parse(s.Broker)
	switch {
	case err != nil || u.Host == "" || u.Port() == "":
		es.Add("broker", "must be a URL with host and port, e.g. ssl://mqtt.example.com:8883")
	case u.Scheme == "ssl" || u.Scheme == "wss":
		s.CheckScheme(&es, "", u.Scheme, true, "ssl:// or wss://", "tcp:// or ws://")
	case u.Scheme == "tcp" || u.Scheme == "ws":
		s.CheckScheme(&es, "", u.Scheme, false, "ssl:// or wss://", "tcp:// or ws://")
		if !s.Plain() {
			es.Add("broker", `%s:// is not encrypted: the broker password and every answer would cross the network in clear text; use ssl:// with ca_file, or set "tls": false to do that on purpose`, u.Scheme)
		}
		s.CheckPlain(&es, "", "is for TLS, and the broker URL is not")
	default:
		es.Add("broker", "scheme %q: use ssl://, wss://, tcp:// or ws://", u.Scheme)
	}
	if s.Password != "" && s.PasswordFile != "" {
		es.Add("password_file", "set password or password_file, not both")
	}
	return es.Err()
}

// password is the broker password, from the file if one is named.
func (s *Settings) password() (string, error) {
	if s.PasswordFile == "" {
		return s.Password, nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// operator reads the operator key to sign calls with.
func (s *Settings) operator() (ed25519.PrivateKey, error) {
	if s.OperatorKey == "" || s.Signer == "" {
		return nil, errors.New("fleet settings: operator_key and signer are needed to sign calls (osgate rpc keygen makes a key; its public key goes into the gateways' rpc.operator_keys under the signer's name)")
	}
	return readPrivateKey(s.OperatorKey, "operator_key")
}

func readPrivateKey(path, key string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	priv, err := sign.ParsePrivateKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", key, path, err)
	}
	return priv, nil
}
