package ota

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildFromGAF(t *testing.T) {
	pub, priv := testKey(t)
	dir := t.TempDir()
	gaf := filepath.Join(dir, "v2.gaf")
	parts := gafParts("v2.0.0", 2)
	writeGAF(t, gaf, parts)
	out := filepath.Join(dir, "release")
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	m, reused, err := Build(BuildOptions{Key: priv, Version: "v2.0.0", Channel: "stable", MinPrevious: "v1.0.0",
		Out: out, GAF: gaf, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if len(reused) != 0 {
		t.Fatalf("reused %v without a previous release", reused)
	}
	got, err := OpenManifest(pub, mustRead(t, out, "manifest.json"), mustRead(t, out, "manifest.json.sig"))
	if err != nil {
		t.Fatalf("the release's own manifest does not verify: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("manifest on disk differs from the one returned")
	}
	if got.Version != "v2.0.0" || got.Channel != "stable" || got.MinPrevious != "v1.0.0" || !got.CreatedAt.Equal(now) {
		t.Fatalf("manifest header = %+v", got)
	}
	var files []string
	for name, img := range map[string][]byte{Root: parts["root.img"], Boot: parts["boot.img"], MBR: parts["mbr.img"]} {
		p := got.Parts[name]
		if !strings.HasPrefix(p.File, name+"-") || !strings.HasSuffix(p.File, ".img.gz") {
			t.Errorf("%s file %q", name, p.File)
		}
		file := mustRead(t, out, p.File)
		if int64(len(file)) != p.FileSize || int64(len(img)) != p.Size {
			t.Errorf("%s sizes: file %d (manifest %d), image %d (manifest %d)", name, len(file), p.FileSize, len(img), p.Size)
		}
		if !bytes.Equal(gunzip(t, file), img) {
			t.Errorf("%s does not decompress to its image", name)
		}
		files = append(files, p.File)
	}
	if !reflect.DeepEqual(got.Parts[Boot].Cmdline, wantExtents()) {
		t.Errorf("boot command lines = %+v, want %+v", got.Parts[Boot].Cmdline, wantExtents())
	}
	want := append(files, "manifest.json", "manifest.json.sig")
	slices.Sort(want)
	if ls := listDir(t, out); !reflect.DeepEqual(ls, want) {
		t.Errorf("release directory holds %v, want %v (sbom and temporary files left out)", ls, want)
	}
}

func TestBuildReusesUnchangedBoot(t *testing.T) {
	pub, priv := testKey(t)
	dir := t.TempDir()
	gaf := filepath.Join(dir, "v2.gaf")
	writeGAF(t, gaf, gafParts("v2.0.0", 2))
	v2 := filepath.Join(dir, "v2")
	m2, _, err := Build(BuildOptions{Key: priv, Version: "v2.0.0", Channel: "stable", Out: v2, GAF: gaf})
	if err != nil {
		t.Fatal(err)
	}
	// v3 from separate part files: a new root, the same boot image.
	for name, b := range map[string][]byte{"root.img": rootImage("v3.0.0"), "boot.img": bootImage(2)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v3 := filepath.Join(dir, "v3")
	m3, reused, err := Build(BuildOptions{Key: priv, Version: "v3.0.0", Channel: "stable", Out: v3,
		Root: filepath.Join(dir, "root.img"), Boot: filepath.Join(dir, "boot.img"), Previous: v2})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m3.Parts[Boot], m2.Parts[Boot]) || !reflect.DeepEqual(reused, []string{m2.Parts[Boot].File}) {
		t.Fatalf("boot not reused: %+v, reused %v", m3.Parts[Boot], reused)
	}
	if _, err := os.Stat(filepath.Join(v3, m3.Parts[Boot].File)); !os.IsNotExist(err) {
		t.Fatalf("the unchanged boot part was written again: %v", err)
	}
	if _, ok := m3.Parts[MBR]; ok {
		t.Fatal("an MBR appeared from nowhere")
	}
	if m3.Parts[Root].Sha256 == m2.Parts[Root].Sha256 {
		t.Fatal("the new root is not new")
	}
	if _, err := OpenManifest(pub, mustRead(t, v3, "manifest.json"), mustRead(t, v3, "manifest.json.sig")); err != nil {
		t.Fatal(err)
	}
	// A changed boot image is written.
	if err := os.WriteFile(filepath.Join(dir, "boot.img"), bootImage(4), 0o644); err != nil {
		t.Fatal(err)
	}
	m4, reused, err := Build(BuildOptions{Key: priv, Version: "v4.0.0", Channel: "stable", Out: filepath.Join(dir, "v4"),
		Root: filepath.Join(dir, "root.img"), Boot: filepath.Join(dir, "boot.img"), Previous: v3})
	if err != nil {
		t.Fatal(err)
	}
	// The root image is v3's again: reused too.
	if !reflect.DeepEqual(reused, []string{m3.Parts[Root].File}) || m4.Parts[Boot].Sha256 == m3.Parts[Boot].Sha256 {
		t.Fatalf("reused %v; want only the unchanged root", reused)
	}
	if ls := listDir(t, filepath.Join(dir, "v4")); !slices.Contains(ls, m4.Parts[Boot].File) || slices.Contains(ls, m4.Parts[Root].File) {
		t.Fatalf("v4 holds %v", ls)
	}
}

func TestBuildErrors(t *testing.T) {
	_, priv := testKey(t)
	_, otherPriv := testKey(t)
	dir := t.TempDir()
	gaf := filepath.Join(dir, "ok.gaf")
	writeGAF(t, gaf, gafParts("v2.0.0", 2))
	noRoot := filepath.Join(dir, "noroot.gaf")
	writeGAF(t, noRoot, map[string][]byte{"boot.img": bootImage(1)})
	plainBoot := filepath.Join(dir, "plainboot.gaf")
	writeGAF(t, plainBoot, map[string][]byte{"boot.img": noise(9, 4096), "root.img": rootImage("v2.0.0")})
	notZip := filepath.Join(dir, "not.gaf")
	os.WriteFile(notZip, []byte("hello"), 0o644)
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	prev := filepath.Join(dir, "prev")
	if _, _, err := Build(BuildOptions{Key: otherPriv, Version: "v1.0.0", Channel: "stable", Out: prev, GAF: gaf}); err != nil {
		t.Fatal(err)
	}
	n := 0
	out := func() string { n++; return filepath.Join(dir, "out", string(rune('a'+n))) }
	for _, c := range []struct {
		name string
		o    BuildOptions
		want string
	}{
		{"no root", BuildOptions{Key: priv, Version: "v2", Channel: "s", Out: out(), GAF: noRoot}, "holds no root.img"},
		{"no command line", BuildOptions{Key: priv, Version: "v2", Channel: "s", Out: out(), GAF: plainBoot}, "no gokrazy kernel command line"},
		{"not a zip", BuildOptions{Key: priv, Version: "v2", Channel: "s", Out: out(), GAF: notZip}, "a .gaf is a zip"},
		{"output not empty", BuildOptions{Key: priv, Version: "v2", Channel: "s", Out: full, GAF: gaf}, "not empty"},
		{"bad version", BuildOptions{Key: priv, Version: "latest", Channel: "s", Out: out(), GAF: gaf}, `version: "latest"`},
		{"both inputs", BuildOptions{Key: priv, Version: "v2", Channel: "s", Out: out(), GAF: gaf, Root: gaf}, "not both"},
		{"previous signed by another key", BuildOptions{Key: priv, Version: "v2", Channel: "s", Out: out(), GAF: gaf, Previous: prev}, "signed with another key"},
		{"no key", BuildOptions{Version: "v2", Channel: "s", Out: out(), GAF: gaf}, "no signing key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Build(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if c.o.Out != full && c.o.Out != "" {
				if _, err := os.Stat(filepath.Join(c.o.Out, "manifest.json")); err == nil {
					t.Fatal("a failed build left a manifest")
				}
			}
		})
	}
}
