package broker

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/osgate/osgate/config"
)

// ClientsFile is where, under the state dir, osgate keeps the passwords it
// made for its own clients of the managed broker (JSON, mode 0600). Delete
// it and restart osgate to have new ones made.
const ClientsFile = "broker-clients"

// Login is one client's username and password at the managed broker.
type Login struct {
	Username, Password string
}

// Clients are the logins of osgate's own clients of the managed broker:
// the export (config.BrokerExportUser) and the cloud RPC responder
// (config.BrokerRPCUser).
type Clients struct {
	Export, RPC Login
}

// loadClients reads the logins of osgate's clients from the state dir,
// making (and saving) a random password for each that has none yet.
func loadClients(stateDir string) (Clients, error) {
	path := filepath.Join(stateDir, ClientsFile)
	pw := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Clients{}, fmt.Errorf("broker: read the logins of osgate's clients: %w", err)
	default:
		if err := json.Unmarshal(b, &pw); err != nil {
			return Clients{}, fmt.Errorf("broker: %s is not the JSON osgate wrote (delete it to have new passwords made): %w", path, err)
		}
	}
	changed := false
	for _, user := range []string{config.BrokerExportUser, config.BrokerRPCUser} {
		if len(pw[user]) >= 16 {
			continue
		}
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return Clients{}, fmt.Errorf("broker: make a password: %w", err)
		}
		pw[user] = base64.RawURLEncoding.EncodeToString(raw)
		changed = true
	}
	if changed {
		b, err := json.MarshalIndent(pw, "", "  ")
		if err != nil {
			return Clients{}, fmt.Errorf("broker: encode the logins of osgate's clients: %w", err)
		}
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return Clients{}, fmt.Errorf("broker: create %s: %w", stateDir, err)
		}
		if err := writeFile(path, append(b, '\n')); err != nil {
			return Clients{}, err
		}
	}
	return Clients{
		Export: Login{config.BrokerExportUser, pw[config.BrokerExportUser]},
		RPC:    Login{config.BrokerRPCUser, pw[config.BrokerRPCUser]},
	}, nil
}

// userPassword reads broker.username's password from broker.password_file
// (its first line, surrounding spaces trimmed). When the file does not
// exist it makes it: a random password, mode 0600; made says so.
func userPassword(path string) (pw string, made bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return "", false, fmt.Errorf("broker: make a password: %w", err)
		}
		pw = base64.RawURLEncoding.EncodeToString(raw)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", false, fmt.Errorf("broker: broker.password_file: cannot make %s: %w", path, err)
		}
		_, err = f.WriteString(pw + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return "", false, fmt.Errorf("broker: broker.password_file: write %s: %w", path, err)
		}
		return pw, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("broker: broker.password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSpace(line)
	switch {
	case pw == "":
		return "", false, fmt.Errorf("broker: broker.password_file %s: the first line is empty: write the password there, or delete the file to have one made", path)
	case strings.ContainsFunc(pw, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", false, fmt.Errorf("broker: broker.password_file %s: the password contains control characters", path)
	}
	return pw, false, nil
}

// passwordFile returns a Mosquitto 2.0 password file: one line per login,
// PBKDF2-SHA512 ("$7$", 101 iterations) with a random 12-byte salt, as
// mosquitto_passwd writes it.
func passwordFile(logins ...Login) ([]byte, error) {
	var out []byte
	for _, l := range logins {
		if l.Username == "" || strings.ContainsAny(l.Username, ":\r\n\x00") || strings.TrimSpace(l.Username) != l.Username {
			return nil, fmt.Errorf("broker: username %q: must be non-empty, without ':', newlines or surrounding spaces", l.Username)
		}
		salt := make([]byte, 12)
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("broker: password salt: %w", err)
		}
		const iterations = 101
		key, err := pbkdf2.Key(sha512.New, l.Password, salt, iterations, sha512.Size)
		if err != nil {
			return nil, fmt.Errorf("broker: hash password: %w", err)
		}
		out = fmt.Appendf(out, "%s:$7$%d$%s$%s\n", l.Username, iterations,
			base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key))
	}
	return out, nil
}

// writeAuth writes the password file (osgate's clients and
// broker.username) and the ACL into dir.
func writeAuth(dir string, cfg config.Broker, gatewayID string, access Access, own Clients) error {
	logins := []Login{own.Export, own.RPC}
	if cfg.Username != "" {
		if cfg.Username == config.BrokerExportUser || cfg.Username == config.BrokerRPCUser {
			return fmt.Errorf("broker: broker.username %q is the user of one of osgate's own clients; choose another name", cfg.Username)
		}
		logins = append(logins, Login{cfg.Username, cfg.Password})
	}
	pw, err := passwordFile(logins...)
	if err != nil {
		return err
	}
	acl, err := ACL(cfg, gatewayID, access)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, passwordFileName), pw); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, aclFileName), acl)
}
