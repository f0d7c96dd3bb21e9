package ota

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
)

// BuildOptions says what release Build makes. The parts come either from
// GAF (the zip `gok overwrite --gaf` writes: mbr.img, boot.img, root.img,
// sbom.json) or from Root, Boot and MBR (image files; MBR optional).
type BuildOptions struct {
	Key         ed25519.PrivateKey
	Version     string
	Channel     string
	MinPrevious string // optional: the oldest version that may update to this one
	Out         string // the release directory; must not exist or be empty
	GAF         string
	Root        string
	Boot        string
	MBR         string
	// Previous is the previous release's directory (optional): a part equal
	// to its part (the boot image, often the MBR) is not written again; the
	// manifest names the previous file, which must stay on the server.
	Previous string
	Now      func() time.Time
}

// Build makes a release directory: every part compressed with gzip under a
// name that carries its hash (root-<hash>.img.gz), manifest.json and
// manifest.json.sig. Publish it by copying the directory's files into the
// channel's directory on the server, manifest.json last. It returns the
// manifest and the parts it reused from Previous.
func Build(o BuildOptions) (m *Manifest, reused []string, err error) {
	if o.Key == nil {
		return nil, nil, errors.New("release: no signing key")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := emptyDir(o.Out); err != nil {
		return nil, nil, err
	}
	var prev *Manifest
	if o.Previous != "" {
		if prev, err = readRelease(o.Key.Public().(ed25519.PublicKey), o.Previous); err != nil {
			return nil, nil, err
		}
	}
	inputs, closeAll, err := openInputs(o)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll()
	m = &Manifest{
		Version:     o.Version,
		Channel:     o.Channel,
		CreatedAt:   o.Now().UTC().Truncate(time.Second),
		MinPrevious: o.MinPrevious,
		Parts:       map[string]Part{},
	}
	for _, name := range []string{Root, Boot, MBR} {
		in, ok := inputs[name]
		if !ok {
			continue
		}
		p, err := compressPart(in, o.Out, name)
		if err != nil {
			return nil, nil, fmt.Errorf("release: %s: %w", name, err)
		}
		if prev != nil {
			if old, ok := prev.Parts[name]; ok && old.Sha256 == p.Sha256 && old.Compression == p.Compression {
				if err := os.Remove(filepath.Join(o.Out, p.File)); err != nil {
					return nil, nil, fmt.Errorf("release: %w", err)
				}
				p = old
				reused = append(reused, p.File)
			}
		}
		m.Parts[name] = p
	}
	data, sig, err := SignManifest(o.Key, m)
	if err != nil {
		return nil, nil, fmt.Errorf("release: %w", err)
	}
	if err := writeFile(filepath.Join(o.Out, "manifest.json"), data); err != nil {
		return nil, nil, err
	}
	if err := writeFile(filepath.Join(o.Out, "manifest.json.sig"), sig); err != nil {
		return nil, nil, err
	}
	return m, reused, nil
}

type input struct {
	open func() (io.ReadCloser, error)
}

// openInputs finds the parts in a .gaf or in separate files.
func openInputs(o BuildOptions) (map[string]input, func(), error) {
	ins := map[string]input{}
	fileIn := func(path string) input {
		return input{open: func() (io.ReadCloser, error) { return os.Open(path) }}
	}
	if o.GAF == "" {
		if o.Root == "" || o.Boot == "" {
			return nil, nil, errors.New("release: give a .gaf, or at least the root and boot image files")
		}
		ins[Root], ins[Boot] = fileIn(o.Root), fileIn(o.Boot)
		if o.MBR != "" {
			ins[MBR] = fileIn(o.MBR)
		}
		return ins, func() {}, nil
	}
	if o.Root != "" || o.Boot != "" || o.MBR != "" {
		return nil, nil, errors.New("release: give a .gaf or image files, not both")
	}
	zr, err := zip.OpenReader(o.GAF)
	if err != nil {
		return nil, nil, fmt.Errorf("release: open %s (a .gaf is a zip): %w", o.GAF, err)
	}
	for _, f := range zr.File {
		switch f.Name {
		case "root.img", "boot.img", "mbr.img":
			name := f.Name[:len(f.Name)-len(".img")]
			if _, dup := ins[name]; dup {
				zr.Close()
				return nil, nil, fmt.Errorf("release: %s holds %s twice", o.GAF, f.Name)
			}
			ins[name] = input{open: f.Open}
		}
	}
	if _, ok := ins[Root]; !ok {
		zr.Close()
		return nil, nil, fmt.Errorf("release: %s holds no root.img (not a gokrazy .gaf?)", o.GAF)
	}
	if _, ok := ins[Boot]; !ok {
		zr.Close()
		return nil, nil, fmt.Errorf("release: %s holds no boot.img (not a gokrazy .gaf?)", o.GAF)
	}
	return ins, func() { zr.Close() }, nil
}

// compressPart writes in's bytes gzip-compressed into dir and describes it.
func compressPart(in input, dir, name string) (Part, error) {
	r, err := in.open()
	if err != nil {
		return Part{}, err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(dir, name+"-*.tmp")
	if err != nil {
		return Part{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	fileSum := sha256.New()
	fileCount := &counter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(tmp, fileSum, fileCount), gzip.BestCompression)
	if err != nil {
		return Part{}, err
	}
	imgSum := sha256.New()
	var img bytes.Buffer // the boot image is searched for its command lines
	w := io.MultiWriter(zw, imgSum)
	if name == Boot {
		w = io.MultiWriter(w, &img)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return Part{}, fmt.Errorf("read: %w", err)
	}
	if n == 0 {
		return Part{}, errors.New("the image is empty")
	}
	if err := zw.Close(); err != nil {
		return Part{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Part{}, err
	}
	p := Part{
		Compression: "gzip",
		Sha256:      hexSum(imgSum),
		Size:        n,
		FileSha256:  hexSum(fileSum),
		FileSize:    fileCount.n,
	}
	p.File = fmt.Sprintf("%s-%s.img.gz", name, p.Sha256[:16])
	if name == Boot {
		if p.Cmdline = findCmdlines(img.Bytes()); len(p.Cmdline) == 0 {
			return Part{}, errors.New("no gokrazy kernel command line (init=/gokrazy/init, root=) found in the boot image")
		}
	}
	if err := tmp.Close(); err != nil {
		return Part{}, err
	}
	return p, os.Rename(tmp.Name(), filepath.Join(dir, p.File))
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// readRelease reads and verifies a release directory's manifest.
func readRelease(pub ed25519.PublicKey, dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("release: previous: %w", err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, "manifest.json.sig"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("release: previous: %w", err)
	}
	m, err := OpenManifest(pub, data, sig)
	if err != nil {
		return nil, fmt.Errorf("release: previous %s (signed with another key?): %w", dir, err)
	}
	return m, nil
}

func emptyDir(dir string) error {
	if dir == "" {
		return errors.New("release: no output directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("release: output directory %s is not empty", dir)
	}
	return nil
}

// writeFile writes data to path atomically (a temporary file, synced, then
// renamed).
func writeFile(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}
