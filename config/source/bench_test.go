package source

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

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
