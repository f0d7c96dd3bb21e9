// Package sign is osgate's one use of ed25519: the detached signatures of
// fleet configurations (config/source), of release manifests (ota) and of
// RPC requests sent from the cloud (appliance/mqttrpc), and the base64
// keys that make and check them (osgate config keygen, release keygen, rpc
// keygen).
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// A signature (the ".sig" file next to a document) is the 64-byte ed25519
// signature of the document's exact bytes, stored either raw (exactly 64
// bytes) or as standard base64 (88 characters, surrounding white space such
// as a trailing newline allowed). Sign writes base64.

var (
	// ErrUnsigned: a public key is configured but the fleet server has no
	// signature for the document.
	ErrUnsigned = errors.New("document is not signed")
	// ErrBadSignature: the signature does not match the document and the
	// configured public key (wrong key, or document and signature out of
	// step).
	ErrBadSignature = errors.New("signature does not match the document")
)

// GenerateKey makes a new signing key pair, both base64: publicKey goes
// where the gateway checks signatures (remote.public_key, the OTA
// public_key, rpc.operator_keys), privateKey stays with whoever signs.
func GenerateKey() (publicKey, privateKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("signing: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(pub), base64.StdEncoding.EncodeToString(priv.Seed()), nil
}

// ParsePublicKey decodes a base64 ed25519 public key (32 bytes).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace([]byte(s))))
	if err != nil {
		return nil, fmt.Errorf("public key is not base64: %v", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key must be %d bytes, not %d", ed25519.PublicKeySize, len(b))
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey decodes a base64 ed25519 private key: the 32-byte seed
// GenerateKey writes, or the 64-byte form.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace([]byte(s))))
	if err != nil {
		return nil, fmt.Errorf("private key is not base64: %v", err)
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.PrivateKey(b)
		if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
			return nil, errors.New("private key is inconsistent (its public half does not match)")
		}
		return priv, nil
	}
	return nil, fmt.Errorf("private key must be %d or %d bytes, not %d", ed25519.SeedSize, ed25519.PrivateKeySize, len(b))
}

// Sign returns the contents of doc's ".sig" file: the base64 ed25519
// signature and a newline.
func Sign(priv ed25519.PrivateKey, doc []byte) []byte {
	sig := ed25519.Sign(priv, doc)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sig)), base64.StdEncoding.EncodedLen(len(sig))+1)
	base64.StdEncoding.Encode(out, sig)
	return append(out, '\n')
}

// Verify checks sig (a ".sig" file: raw or base64) against doc and pub. It
// returns ErrUnsigned for an empty sig and wraps ErrBadSignature otherwise.
func Verify(pub ed25519.PublicKey, doc, sig []byte) error {
	if len(sig) == 0 {
		return ErrUnsigned
	}
	raw, err := decodeSignature(sig)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(pub, doc, raw) {
		return ErrBadSignature
	}
	return nil
}

func decodeSignature(sig []byte) ([]byte, error) {
	if len(sig) == ed25519.SignatureSize {
		return sig, nil
	}
	text := bytes.TrimSpace(sig)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(raw, text)
	if err != nil {
		return nil, fmt.Errorf("signature is neither %d raw bytes nor base64 (%d bytes): %v", ed25519.SignatureSize, len(sig), err)
	}
	if n != ed25519.SignatureSize {
		return nil, fmt.Errorf("base64 signature decodes to %d bytes, not %d", n, ed25519.SignatureSize)
	}
	return raw[:n], nil
}
