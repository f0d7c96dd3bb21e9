package appliance

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/atomicfile"
	"github.com/osgate/osgate/internal/scope"
)

// LocalKeyFile is where the gateway keeps the API key it made for local
// use, inside the state dir (mode 0600). `osgate rpc` on the same machine
// reads it, so a fresh install can be managed without editing the config.
const LocalKeyFile = "rpc-key"

// localKey returns the gateway's local API key, creating it on first start.
func localKey(stateDir string) (key string, created bool, err error) {
	path := filepath.Join(stateDir, LocalKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key = strings.TrimSpace(string(b))
		if len(key) >= 16 {
			return key, false, nil
		}
		return "", false, fmt.Errorf("%s holds no usable key (delete it to have a new one made)", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	key = base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return "", false, err
	}
	if err := atomicfile.Write(path, []byte(key+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return key, true, nil
}

// rpcKeys is the configured keys plus the local one, which has scope
// admin: whoever can read the state dir runs the gateway anyway. Keys
// without a scope get the default, read; the log names them.
func (g *Gateway) rpcKeys(cfg *config.Config) ([]config.APIKey, error) {
	keys := append([]config.APIKey(nil), cfg.RPC.APIKeys...)
	key, created, err := localKey(cfg.Gateway.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local RPC key: %w", err)
	}
	if created {
		g.log.Info("made a local RPC key; `osgate rpc` on this machine uses it", "file", filepath.Join(cfg.Gateway.StateDir, LocalKeyFile))
	}
	var unscoped []string
	for _, k := range keys {
		if k.Scope == "" {
			unscoped = append(unscoped, k.Name)
		}
	}
	if len(unscoped) > 0 {
		g.log.Warn(`rpc: API keys without a scope may only read (status, lists, device.read): give them "scope": "write" or "admin" to do more`,
			"keys", unscoped)
	}
	for _, k := range keys {
		if k.Name == "local" {
			return keys, nil // the config names its own "local" key
		}
	}
	return append(keys, config.APIKey{Name: "local", SHA256: apikey.Hash(key), Scope: scope.Admin.String()}), nil
}
