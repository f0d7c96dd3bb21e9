package main

import (
	"fmt"
	"io"
	"os"

	"github.com/osgate/osgate/internal/sign"
)

const configUsage = "config needs: keygen KEYFILE | sign KEYFILE DOCUMENT [DOCUMENT ...]"

// configCmd makes signing keys and signs configuration documents for the
// fleet server: keygen writes the private key (base64) to KEYFILE, mode
// 0600, and prints the public key for the bootstrap file's
// remote.public_key; sign writes each document's signature next to it
// (gw-0001.json.sig).
func configCmd(args []string, out io.Writer) error {
	if len(args) < 2 {
		return usageError{configUsage}
	}
	switch args[0] {
	case "keygen":
		if len(args) != 2 {
			return usageError{configUsage}
		}
		pub, priv, err := sign.GenerateKey()
		if err != nil {
			return err
		}
		f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		if _, err := fmt.Fprintln(f, priv); err != nil {
			f.Close()
			return fmt.Errorf("keygen: write %s: %w", args[1], err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("keygen: write %s: %w", args[1], err)
		}
		_, err = fmt.Fprintf(out, "public_key: %s\n", pub)
		return err
	case "sign":
		if len(args) < 3 {
			return usageError{configUsage}
		}
		text, err := os.ReadFile(args[1])
		if err != nil {
			return fmt.Errorf("sign: read key: %w", err)
		}
		priv, err := sign.ParsePrivateKey(string(text))
		if err != nil {
			return fmt.Errorf("sign: %s: %w", args[1], err)
		}
		for _, path := range args[2:] {
			doc, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			if err := os.WriteFile(path+".sig", sign.Sign(priv, doc), 0o644); err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			fmt.Fprintf(out, "signed %s -> %s.sig\n", path, path)
		}
		return nil
	}
	return usageError{configUsage}
}
