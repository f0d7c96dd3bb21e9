//go:build containertest

package containertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchives reads each architecture's archive as `docker load` does
// (manifest.json, the image config, the layers): the config names the
// architecture, the binaries in the layers are built for it, and the
// arm64 image is under 25 MB gzipped.
func TestArchives(t *testing.T) {
	dir, version := archives(t)
	for _, a := range []struct {
		suffix, arch, variant string
		machine               elf.Machine
		class                 elf.Class
	}{
		{"amd64", "amd64", "", elf.EM_X86_64, elf.ELFCLASS64},
		{"arm64", "arm64", "", elf.EM_AARCH64, elf.ELFCLASS64},
		{"armv7", "arm", "v7", elf.EM_ARM, elf.ELFCLASS32},
	} {
		t.Run(a.suffix, func(t *testing.T) {
			path := filepath.Join(dir, "osgate-"+version+"-"+a.suffix+".tar")
			files := readArchive(t, path)
			var manifest []struct {
				Config   string
				RepoTags []string
				Layers   []string
			}
			if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
				t.Fatalf("%s: manifest.json: %v (%d images)", path, err, len(manifest))
			}
			m := manifest[0]
			if want := "localhost/osgate:" + version + "-" + a.suffix; len(m.RepoTags) != 1 || m.RepoTags[0] != want {
				t.Errorf("tags %v, want %s", m.RepoTags, want)
			}
			var cfg struct {
				Architecture, Variant, OS string
			}
			if err := json.Unmarshal(files[m.Config], &cfg); err != nil {
				t.Fatalf("image config %s: %v", m.Config, err)
			}
			if cfg.OS != "linux" || cfg.Architecture != a.arch || cfg.Variant != a.variant {
				t.Errorf("image config says %s/%s/%s, want linux/%s/%s", cfg.OS, cfg.Architecture, cfg.Variant, a.arch, a.variant)
			}
			root := map[string][]byte{}
			for _, l := range m.Layers {
				layer, ok := files[l]
				if !ok {
					t.Fatalf("layer %s is not in the archive", l)
				}
				for name, body := range readTar(t, bytes.NewReader(layer)) {
					root[name] = body
				}
			}
			for _, bin := range []string{"usr/local/bin/osgate", "usr/local/bin/mosquitto"} {
				body, ok := root[bin]
				if !ok {
					t.Errorf("no %s in the image", bin)
					continue
				}
				f, err := elf.NewFile(bytes.NewReader(body))
				if err != nil {
					t.Errorf("%s: %v", bin, err)
					continue
				}
				if f.Machine != a.machine || f.Class != a.class {
					t.Errorf("%s is %v %v, want %v %v", bin, f.Machine, f.Class, a.machine, a.class)
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP {
						t.Errorf("%s is dynamically linked: the image has no libc", bin)
					}
				}
			}
			for _, want := range []string{"etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt"} {
				if _, ok := root[want]; !ok {
					t.Errorf("no %s in the image", want)
				}
			}
			if !strings.Contains(string(root["etc/passwd"]), "osgate:x:10001:10001:") {
				t.Errorf("etc/passwd has no osgate user of uid 10001:\n%s", root["etc/passwd"])
			}

			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			gz := gzipSize(t, path)
			t.Logf("%s: %d bytes, %d bytes gzipped", filepath.Base(path), st.Size(), gz)
			if a.suffix == "arm64" && gz >= 25<<20 {
				t.Errorf("arm64 image %d bytes gzipped, want under 25 MB", gz)
			}
		})
	}
}

// readArchive returns the regular files of a tar file by name.
func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (make container writes it)", err)
	}
	defer f.Close()
	return readTar(t, f)
}

func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar: %s: %v", h.Name, err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = body
	}
}

// gzipSize is the archive's size gzipped at the best compression (what a
// site receives when the image is shipped as a file).
func gzipSize(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n countWriter
	zw, _ := gzip.NewWriterLevel(&n, gzip.BestCompression)
	if _, err := io.Copy(zw, f); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// TestOCIArchive: the OCI archive holds one image index naming the three
// platforms, each manifest with its blobs in the archive.
func TestOCIArchive(t *testing.T) {
	dir, version := archives(t)
	files := readArchive(t, filepath.Join(dir, "osgate-"+version+".oci.tar"))
	type descriptor struct {
		MediaType string
		Digest    string
		Platform  struct{ Architecture, OS, Variant string }
	}
	var top struct{ Manifests []descriptor }
	if err := json.Unmarshal(files["index.json"], &top); err != nil || len(top.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d entries; want one image index", err, len(top.Manifests))
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		b, ok := files["blobs/"+strings.Replace(d.Digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("blob %s is not in the archive", d.Digest)
		}
		return b
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(blob(top.Manifests[0]), &index); err != nil {
		t.Fatalf("image index: %v", err)
	}
	var platforms []string
	for _, m := range index.Manifests {
		platforms = append(platforms, strings.TrimSuffix(m.Platform.OS+"/"+m.Platform.Architecture+"/"+m.Platform.Variant, "/"))
		var manifest struct {
			Config descriptor
			Layers []descriptor
		}
		if err := json.Unmarshal(blob(m), &manifest); err != nil || len(manifest.Layers) == 0 {
			t.Fatalf("manifest of %v: %v (%d layers)", m.Platform, err, len(manifest.Layers))
		}
		blob(manifest.Config)
		for _, l := range manifest.Layers {
			blob(l)
		}
	}
	if got := strings.Join(platforms, " "); got != "linux/amd64 linux/arm64 linux/arm/v7" {
		t.Errorf("platforms %q, want linux/amd64 linux/arm64 linux/arm/v7", got)
	}
}
