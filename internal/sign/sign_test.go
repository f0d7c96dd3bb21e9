package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type testKey struct {
	pub  string
	priv ed25519.PrivateKey
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub: pub, priv: p}
}

func doc(name string) []byte { return []byte(fmt.Sprintf(`{"name":%q}`+"\n", name)) }

func TestSignVerify(t *testing.T) {
	k := newTestKey(t)
	pub, err := ParsePublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	d := doc("signed")
	sig := Sign(k.priv, d)
	if len(sig) != 89 || sig[88] != '\n' {
		t.Fatalf("signature file %q: want 88 base64 characters and a newline", sig)
	}
	raw, _ := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sig)))
	for name, s := range map[string][]byte{
		"base64":            sig,
		"base64 no newline": bytes.TrimSpace(sig),
		"base64 CRLF":       append(bytes.TrimSpace(sig), '\r', '\n'),
		"raw":               raw,
	} {
		if err := Verify(pub, d, s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	other := newTestKey(t)
	for name, c := range map[string]struct {
		doc, sig []byte
		want     error
		msg      string
	}{
		"empty":          {d, nil, ErrUnsigned, "not signed"},
		"other key":      {d, Sign(other.priv, d), ErrBadSignature, ""},
		"changed doc":    {append(bytes.Clone(d), ' '), sig, ErrBadSignature, ""},
		"short base64":   {d, []byte("AAAA"), ErrBadSignature, "decodes to 3 bytes"},
		"not base64":     {d, []byte("this is not a signature"), ErrBadSignature, "neither 64 raw bytes nor base64"},
		"flipped raw":    {d, append([]byte{raw[0] ^ 1}, raw[1:]...), ErrBadSignature, ""},
		"signature of ∅": {d, Sign(k.priv, nil), ErrBadSignature, ""},
	} {
		err := Verify(pub, c.doc, c.sig)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v containing %q", name, err, c.want, c.msg)
		}
	}
}

func TestParseKeys(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	full, err := ParsePrivateKey(base64.StdEncoding.EncodeToString(p))
	if err != nil || !bytes.Equal(full, p) {
		t.Fatalf("64-byte private key: %v", err)
	}
	if got := base64.StdEncoding.EncodeToString(p.Public().(ed25519.PublicKey)); got != pub {
		t.Fatalf("public key %s does not belong to the private key (%s)", pub, got)
	}
	broken := bytes.Clone(p)
	broken[40] ^= 1
	for _, s := range []string{"", "!!", base64.StdEncoding.EncodeToString(make([]byte, 31)), base64.StdEncoding.EncodeToString(broken)} {
		if _, err := ParsePrivateKey(s); err == nil {
			t.Errorf("private key %q accepted", s)
		}
	}
	for _, s := range []string{"", "!!", priv + "AA", base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("public key %q accepted", s)
		}
	}
}

// FuzzSignedDocument: for any document and any signature file, Verify
// never panics, accepts exactly the documents ed25519 accepts, and a
// document signed with Sign always verifies.
func FuzzSignedDocument(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := seed.Public().(ed25519.PublicKey)
	d := doc("fuzz")
	sig := Sign(seed, d)
	raw, _ := decodeSignature(sig)
	f.Add(d, sig)
	f.Add(d, raw)
	f.Add(d, []byte{})
	f.Add([]byte{}, Sign(seed, nil))
	f.Add(d, []byte("  \n"+string(bytes.TrimSpace(sig))+"\n\n"))
	f.Add(d, sig[:87])
	f.Add([]byte(`{"name":"x"}`), []byte("=="))
	f.Fuzz(func(t *testing.T, doc, sig []byte) {
		err := Verify(pub, doc, sig)
		if err == nil {
			r, derr := decodeSignature(sig)
			if derr != nil || !ed25519.Verify(pub, doc, r) {
				t.Fatalf("accepted a signature ed25519 refuses: %q", sig)
			}
		} else if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnsigned) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if err := Verify(pub, doc, Sign(seed, doc)); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	_, privText, err := GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := ParsePrivateKey(privText)
	pub := priv.Public().(ed25519.PublicKey)
	d := doc(string(make([]byte, 16<<10)))
	sig := Sign(priv, d)
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if err := Verify(pub, d, sig); err != nil {
			b.Fatal(err)
		}
	}
}
