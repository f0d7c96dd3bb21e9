package apikey

import (
	"fmt"
	"testing"
)

// BenchmarkCheck checks a key against a set of 8, the last of which
// matches: every check costs the same whichever matches.
func BenchmarkCheck(b *testing.B) {
	var keys []Key
	for i := range 8 {
		keys = append(keys, Key{Name: fmt.Sprint("k", i), SHA256: Hash(fmt.Sprint("key-", i))})
	}
	s, err := New(keys)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := s.Check("key-7"); !ok {
			b.Fatal("key-7 refused")
		}
	}
}
