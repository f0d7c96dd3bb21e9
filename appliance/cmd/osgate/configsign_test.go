package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osgate/osgate/internal/sign"
)

func TestKeygenSignVerify(t *testing.T) {
	dir := t.TempDir()
	key, doc := filepath.Join(dir, "signing.key"), filepath.Join(dir, "gw-1.json")
	var out bytes.Buffer
	if err := configCmd([]string{"keygen", key}, &out); err != nil {
		t.Fatal(err)
	}
	pubText, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "public_key: ")
	if !ok {
		t.Fatalf("keygen printed %q", out.String())
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if err := configCmd([]string{"keygen", key}, &out); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	if err := os.WriteFile(doc, []byte(`{"gateway":{"id":"gw-1"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := configCmd([]string{"sign", key, doc}, &out); err != nil {
		t.Fatal(err)
	}
	pub, err := sign.ParsePublicKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := os.ReadFile(doc)
	sig, err := os.ReadFile(doc + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.Verify(pub, d, sig); err != nil {
		t.Fatalf("signature written by sign does not verify: %v", err)
	}
	if err := sign.Verify(pub, append(d, ' '), sig); err == nil {
		t.Fatal("signature verifies a changed document")
	}
	for _, args := range [][]string{nil, {"sign", key}, {"keygen"}, {"frob", key}, {"sign", doc, doc}} {
		if err := configCmd(args, &out); err == nil {
			t.Errorf("configCmd(%q) succeeded", args)
		}
	}
}
