package apikey

import (
	"fmt"
	"testing"

	"github.com/osgate/osgate/config"
)

// BenchmarkCheck checks a key against a set of 8, the last of which
// matches: every check costs the same whichever matches.
func BenchmarkCheck(b *testing.B) {
	var keys []config.APIKey
	for i := range 8 {
		keys = append(keys, config.APIKey{Name: fmt.Sprint("k", i), SHA256: Hash(fmt.Sprint("key-", i))})
	}
	s, err := New(keys)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Check("key-7"); !ok {
			b.Fatal("key-7 refused")
		}
	}
}
