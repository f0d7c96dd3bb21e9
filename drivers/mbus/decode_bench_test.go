package mbus

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDecode decodes every golden frame once per iteration and
// reports frames per second and allocations per frame.
func BenchmarkDecode(b *testing.B) {
	paths, _ := filepath.Glob("testdata/frames/*.hex")
	var frames [][]byte
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		f, err := parseHex(text)
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f)
	}
	if len(frames) == 0 {
		b.Fatal("no frames")
	}
	decodeAll := func() {
		for _, f := range frames {
			if _, err := Decode(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	allocs := testing.AllocsPerRun(5, decodeAll) / float64(len(frames))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		decodeAll()
	}
	n := float64(b.N) * float64(len(frames))
	b.ReportMetric(n/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(allocs, "allocs/frame")
}
