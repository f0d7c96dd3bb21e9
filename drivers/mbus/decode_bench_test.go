package mbus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// libmbusLeftOut are golden frames that testdata/libmbus-bench leaves out
// (libmbus cannot normalise one of their records and would print an error
// in every round); the libmbus-frames benchmarks leave them out on both
// sides, so that Go and C decode the same frames.
var libmbusLeftOut = map[string]bool{"sen_pollutherm.hex": true}

func benchFramePaths(b *testing.B, libmbusSet bool) []string {
	all, _ := filepath.Glob("testdata/frames/*.hex")
	var paths []string
	for _, p := range all {
		if !libmbusSet || !libmbusLeftOut[filepath.Base(p)] {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		b.Fatal("no frames in testdata/frames")
	}
	return paths
}

func benchFrames(b *testing.B, paths []string) [][]byte {
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
	return frames
}

// BenchmarkDecode decodes every golden frame once per op and reports
// frames per second and allocations per frame: with a Decoder reused from
// frame to frame (what the connector does) and with Decode (a Telegram of
// its own per frame, values boxed in interfaces). libmbus-frames compares
// the Decoder with libmbus, the C library the golden decodings come from,
// on the frames both decode: set LIBMBUS_SRC to a libmbus source tree
// (https://github.com/rscada/libmbus) and have gcc.
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
	b.Run("Decoder", func(b *testing.B) { benchDecode(b, benchFrames(b, benchFramePaths(b, false)), withDecoder) })
	b.Run("Telegram", func(b *testing.B) { benchDecode(b, benchFrames(b, benchFramePaths(b, false)), telegram) })
	b.Run("libmbus-frames", func(b *testing.B) {
		paths := benchFramePaths(b, true)
		b.Run("Decoder", func(b *testing.B) { benchDecode(b, benchFrames(b, paths), withDecoder) })
		b.Run("libmbus", func(c *testing.B) { benchLibmbus(c, b.TempDir, paths) })
	})
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
	cpu := cpuTime(b)
	for b.Loop() {
		decodeAll()
	}
	cpu = cpuTime(b) - cpu
	n := float64(b.N) * float64(len(frames))
	b.ReportMetric(n/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(n/cpu.Seconds(), "frames/cpu-s")
	b.ReportMetric(allocs, "allocs/frame")
}

// cpuTime is the CPU time the process has used, in all its threads (the
// garbage collector's too). On a shared machine it varies less with the
// load than the wall time does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLibmbus runs testdata/libmbus-bench for b.N rounds over the frames;
// its frames/s is timed inside the program, without its start-up. The
// program is built into a directory from dir (of the parent benchmark,
// which calls this one with growing b.N).
func benchLibmbus(b *testing.B, dir func() string, paths []string) {
	src := os.Getenv("LIBMBUS_SRC")
	if src == "" {
		b.Skip("LIBMBUS_SRC is not set: no libmbus baseline (set it to a checkout of https://github.com/rscada/libmbus)")
	}
	bin := filepath.Join(dir(), "libmbus-bench")
	if _, err := os.Stat(bin); err != nil {
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			b.Fatal("the libmbus baseline needs gcc: apt-get install gcc")
		}
		args := []string{"-O2", "-I" + src, "-o", bin, "testdata/libmbus-bench/bench.c"}
		for _, f := range []string{"mbus-protocol.c", "mbus-protocol-aux.c", "mbus-serial.c", "mbus-tcp.c"} {
			args = append(args, filepath.Join(src, "mbus", f))
		}
		if out, err := exec.Command(gcc, append(args, "-lm")...).CombinedOutput(); err != nil {
			b.Fatalf("build the libmbus baseline from LIBMBUS_SRC=%s: %v\n%s", src, err, out)
		}
	}
	b.ResetTimer()
	out, err := exec.Command(bin, append([]string{strconv.Itoa(b.N)}, paths...)...).Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("libmbus baseline: %v\n%s", err, out)
	}
	var frames int
	var perSec, perCPUSec float64
	if _, err := fmt.Sscanf(string(out), "%d frames %g frames/s %g frames/cpu-s", &frames, &perSec, &perCPUSec); err != nil || frames != len(paths) {
		b.Fatalf("libmbus baseline decoded %d of %d frames: %q", frames, len(paths), out)
	}
	b.ReportMetric(perSec, "frames/s")
	b.ReportMetric(perCPUSec, "frames/cpu-s")
}
