// Package ota updates an osgate appliance from signed releases that any
// static HTTP server can serve. The release tool (Build) turns a gokrazy
// build into a release directory: compressed image parts and a manifest
// signed with ed25519. The Agent on the device polls a channel's manifest,
// verifies it, downloads and checks every part, writes them through
// gokrazy's update API, boots the new root once and confirms it only after
// sustained health; anything else returns the device to the previous root.
package ota

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
)

// Part names, in the order they are written.
const (
	Root = "root"
	Boot = "boot"
	MBR  = "mbr"
)

// maxManifest bounds a manifest or its signature.
const maxManifest = 1 << 20

// Manifest describes one release. Its signature covers the exact bytes of
// manifest.json, so it is parsed from those bytes and never re-encoded
// before verification.
type Manifest struct {
	Version     string          `json:"version" strict:"required"`
	Channel     string          `json:"channel" strict:"required"`
	CreatedAt   time.Time       `json:"created_at" strict:"required"`
	MinPrevious string          `json:"min_previous,omitempty"`
	Parts       map[string]Part `json:"parts" strict:"required"`
}

// Part is one image part: its file (relative to the manifest's URL), how it
// is compressed, and the hash and size of the bytes written to the device
// (Sha256, Size) and of the file served (FileSha256, FileSize).
type Part struct {
	File        string `json:"file" strict:"required"`
	Compression string `json:"compression" strict:"required"`
	Sha256      string `json:"sha256" strict:"required"`
	Size        int64  `json:"size" strict:"required"`
	FileSha256  string `json:"file_sha256" strict:"required"`
	FileSize    int64  `json:"file_size" strict:"required"`
	// Cmdline locates the kernel command line(s) inside the boot image
	// (cmdline.txt and, for systemd-boot, loader/entries/gokrazy.conf):
	// the agent rewrites them there for a try-once boot. Boot only.
	Cmdline []Extent `json:"cmdline,omitempty"`
}

// Extent is a byte range of an uncompressed part.
type Extent struct {
	Offset int64 `json:"offset" strict:"required"`
	Length int64 `json:"length" strict:"required"`
}

var (
	versionRe = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.-]+)?$`)
	channelRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	fileRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// maxPart bounds a part's size (an SD card's root partition is far smaller).
const maxPart = 64 << 30

// maxCmdline bounds one command-line extent.
const maxCmdline = 4096

// ParseManifest decodes a manifest strictly and checks every field; the
// error lists each problem with its JSON path.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > maxManifest {
		return nil, fmt.Errorf("manifest: larger than %d bytes", maxManifest)
	}
	var m Manifest
	if err := strict.Decode(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	var es strict.Errors
	if !versionRe.MatchString(m.Version) {
		es.Add("version", "%q is not a version like v1.4.0", m.Version)
	}
	if m.MinPrevious != "" && !versionRe.MatchString(m.MinPrevious) {
		es.Add("min_previous", "%q is not a version like v1.4.0", m.MinPrevious)
	}
	if !channelRe.MatchString(m.Channel) {
		es.Add("channel", "%q is not a channel name (lower case letters, digits, . _ -)", m.Channel)
	}
	if m.CreatedAt.IsZero() {
		es.Add("created_at", "is required")
	}
	if _, ok := m.Parts[Root]; !ok {
		es.Add("parts", "must hold a root part")
	}
	if _, ok := m.Parts[Boot]; !ok {
		es.Add("parts", "must hold a boot part (the try-once boot rewrites the boot partition)")
	}
	files := map[string]string{}
	for _, name := range []string{Root, Boot, MBR} {
		if p, ok := m.Parts[name]; ok {
			p.check(&es, "parts."+name, name)
			if other, dup := files[p.File]; dup {
				es.Add("parts."+name+".file", "is also the file of part %s", other)
			}
			files[p.File] = name
		}
	}
	for name := range m.Parts {
		if name != Root && name != Boot && name != MBR {
			es.Add(strict.Join("parts", name), "unknown part (root, boot or mbr)")
		}
	}
	return es.Err()
}

func (p Part) check(es *strict.Errors, path, name string) {
	if !fileRe.MatchString(p.File) {
		es.Add(path+".file", "%q is not a plain file name", p.File)
	}
	switch p.Compression {
	case "gzip", "none":
	default:
		es.Add(path+".compression", "%q is not gzip or none", p.Compression)
	}
	for field, h := range map[string]string{"sha256": p.Sha256, "file_sha256": p.FileSha256} {
		if !sha256Re.MatchString(h) {
			es.Add(path+"."+field, "must be 64 lower-case hex digits")
		}
	}
	if p.Size <= 0 || p.Size > maxPart {
		es.Add(path+".size", "must be from 1 to %d, not %d", int64(maxPart), p.Size)
	}
	if p.FileSize <= 0 || p.FileSize > maxPart {
		es.Add(path+".file_size", "must be from 1 to %d, not %d", int64(maxPart), p.FileSize)
	}
	if p.Compression == "none" && (p.FileSize != p.Size || p.FileSha256 != p.Sha256) {
		es.Add(path, "an uncompressed part's file must be its image (same size and sha256)")
	}
	if name != Boot && len(p.Cmdline) > 0 {
		es.Add(path+".cmdline", "only the boot part has a command line")
	}
	if name == Boot && len(p.Cmdline) == 0 {
		es.Add(path+".cmdline", "is required: the try-once boot patches the kernel command line")
	}
	end := int64(0)
	for i, e := range p.Cmdline {
		ep := strict.Index(path+".cmdline", i)
		switch {
		case e.Length <= 0 || e.Length > maxCmdline:
			es.Add(ep+".length", "must be from 1 to %d, not %d", maxCmdline, e.Length)
		case e.Offset < end:
			es.Add(ep+".offset", "extents must be in order and must not overlap")
		case e.Offset > p.Size-e.Length:
			es.Add(ep, "lies beyond the part's %d bytes", p.Size)
		default:
			end = e.Offset + e.Length
		}
	}
}

// OpenManifest verifies sig (the manifest.json.sig file, the format of
// config signatures) over the exact bytes of data with pub, then parses
// data. A missing signature is sign.ErrUnsigned, a wrong one wraps
// sign.ErrBadSignature.
func OpenManifest(pub ed25519.PublicKey, data, sig []byte) (*Manifest, error) {
	if err := sign.Verify(pub, data, sig); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return ParseManifest(data)
}

// SignManifest encodes m (checked first) and signs it: the bytes to serve as
// manifest.json and as manifest.json.sig.
func SignManifest(priv ed25519.PrivateKey, m *Manifest) (data, sig []byte, err error) {
	if err := m.check(); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	data, err = json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: encode: %w", err)
	}
	data = append(data, '\n')
	return data, sign.Sign(priv, data), nil
}
