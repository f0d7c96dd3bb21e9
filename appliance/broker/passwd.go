package broker

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strings"
)

// passwordFile returns a Mosquitto 2.0 password file line for one user:
// PBKDF2-SHA512 ("$7$") with a random 12-byte salt, as mosquitto_passwd
// writes it.
func passwordFile(user, password string) ([]byte, error) {
	if user == "" || strings.ContainsAny(user, ":\r\n") {
		return nil, fmt.Errorf("broker: username %q: must be non-empty without ':' or newlines", user)
	}
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("broker: password salt: %w", err)
	}
	const iterations = 101
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
	if err != nil {
		return nil, fmt.Errorf("broker: hash password: %w", err)
	}
	return fmt.Appendf(nil, "%s:$7$%d$%s$%s\n", user, iterations,
		base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key)), nil
}
