package mbus

import (
	"os"
	"path/filepath"
	"testing"
)

// libmbusLeftOut are golden frames that testdata/libmbus-bench leaves out
// (libmbus cannot normalise one of their records and would print an error
// in every round); the "libmbus-set" benchmark leaves them out too, so
// that the two decode the same frames.
var libmbusLeftOut = map[string]bool{"sen_pollutherm.hex": true}

func benchFrames(b *testing.B, libmbusSet bool) [][]byte {
	paths, _ := filepath.Glob("testdata/frames/*.hex")
	var frames [][]byte
	for _, p := range paths {
		if libmbusSet && libmbusLeftOut[filepath.Base(p)] {
			continue
		}
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
	return frames
}

// BenchmarkDecode decodes every golden frame once per iteration and
// reports frames per second and allocations per frame: with a Decoder
// reused from frame to frame (what the connector does), and with Decode
// (a Telegram of its own per frame, values boxed in interfaces).
func BenchmarkDecode(b *testing.B) {
	var d Decoder
	withDecoder := func(b *testing.B, f []byte) {
		if err := d.Decode(f); err != nil {
			b.Fatal(err)
		}
	}
	telegram := func(b *testing.B, f []byte) {
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Decoder", func(b *testing.B) { benchDecode(b, benchFrames(b, false), withDecoder) })
	b.Run("Decoder-libmbus-set", func(b *testing.B) { benchDecode(b, benchFrames(b, true), withDecoder) })
	b.Run("Telegram", func(b *testing.B) { benchDecode(b, benchFrames(b, false), telegram) })
}

func benchDecode(b *testing.B, frames [][]byte, decode func(*testing.B, []byte)) {
	decodeAll := func() {
		for _, f := range frames {
			decode(b, f)
		}
	}
	decodeAll() // warm up: a reused Decoder grows its storage once
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
