package source

import (
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

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

// BenchmarkOpenCache is the start-up cost of the cache: preflight, bbolt
// open, bbolt's check and decoding the entries.
func BenchmarkOpenCache(b *testing.B) {
	path := filepath.Join(b.TempDir(), CacheFile)
	filledCache(b, path)
	log := slog.New(slog.DiscardHandler)
	for b.Loop() {
		c, moved, err := openCache(path, log)
		if err != nil || moved != "" {
			b.Fatal(err, moved)
		}
		c.close()
	}
	if _, err := os.Stat(path); err != nil {
		b.Fatal(err)
	}
}
