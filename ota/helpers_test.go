package ota

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// The test images are shaped like gokrazy's: a boot image with the padded
// kernel command line in cmdline.txt and in a systemd-boot entry, and a
// root image whose first line names its version (the fake device reads it
// to know which version it booted).

const (
	// As gokrazy's packer writes it for a GPT disk (the amd64 test image).
	testCmdline   = "console=tty1 console=ttyS0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-6f58f0aa0001/PARTNROFF=1 ro init=/gokrazy/init panic=10 oops=panic rootdelay=10 pci=nommconf rootdelay=0 rootwait"
	cmdlineOffset = 4096
	entryOffset   = 8192
	entryPrefix   = "title gokrazy\nlinux /vmlinuz\noptions "
	testPad       = 64
	testBootSize  = 16 << 10
	testRootSize  = 48 << 10
	testMBRSize   = 512
)

func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bootImage is a synthetic boot partition image; kernel varies its bytes.
func bootImage(kernel uint64) []byte {
	b := noise(kernel, testBootSize)
	line := []byte(testCmdline + string(bytes.Repeat([]byte{' '}, testPad)))
	put := func(off int, text []byte) {
		b[off-1] = 0
		copy(b[off:], text)
		b[off+len(text)] = 0
	}
	put(cmdlineOffset, line)
	put(entryOffset, append([]byte(entryPrefix), line...))
	return b
}

func wantExtents() []Extent {
	n := int64(len(testCmdline) + testPad)
	return []Extent{{Offset: cmdlineOffset, Length: n}, {Offset: entryOffset + int64(len(entryPrefix)), Length: n}}
}

func rootImage(version string) []byte {
	b := noise(uint64(len(version))*7919+uint64(version[len(version)-1]), testRootSize)
	copy(b, "osgate-root "+version+"\n")
	return b
}

func mbrImage(seed uint64) []byte { return noise(seed+1000, testMBRSize) }

// writeGAF writes a zip shaped like `gok overwrite --gaf` output.
func writeGAF(t testing.TB, path string, parts map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range []string{"mbr.img", "boot.img", "root.img", "sbom.json"} {
		data, ok := parts[name]
		if !ok {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func gafParts(version string, kernel uint64) map[string][]byte {
	return map[string][]byte{
		"mbr.img":   mbrImage(kernel),
		"boot.img":  bootImage(kernel),
		"root.img":  rootImage(version),
		"sbom.json": []byte(`{"sbom":"` + version + `"}`),
	}
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustRead(t testing.TB, path ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(path...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
