package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/ota"
)

const releaseUsage = `release needs:
  keygen KEYFILE      make an ed25519 key pair for signing releases (the format of config keygen)
  build -key KEYFILE -version V -channel C -out DIR [-min-previous V] [-previous DIR] ARTIFACT.gaf
  build -key KEYFILE -version V -channel C -out DIR -root FILE -boot FILE [-mbr FILE]`

// releaseCmd makes release signing keys and release directories (see
// ota/README.md).
func releaseCmd(args []string, out io.Writer) error {
	if len(args) < 1 {
		return usageError{releaseUsage}
	}
	switch args[0] {
	case "keygen":
		if len(args) != 2 {
			return usageError{releaseUsage}
		}
		return configCmd(args, out)
	case "build":
		return releaseBuild(args[1:], out)
	}
	return usageError{releaseUsage}
}

func releaseBuild(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("release build", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "private key file (from osgate release keygen)")
	var o ota.BuildOptions
	fs.StringVar(&o.Version, "version", "", "release version, e.g. v1.4.0")
	fs.StringVar(&o.Channel, "channel", "", "channel, e.g. stable")
	fs.StringVar(&o.MinPrevious, "min-previous", "", "oldest version that may update to this one")
	fs.StringVar(&o.Out, "out", "", "release directory to create")
	fs.StringVar(&o.Previous, "previous", "", "previous release directory: parts unchanged since (boot, often mbr) are not written again")
	fs.StringVar(&o.Root, "root", "", "root image file (instead of a .gaf)")
	fs.StringVar(&o.Boot, "boot", "", "boot image file (instead of a .gaf)")
	fs.StringVar(&o.MBR, "mbr", "", "MBR image file (instead of a .gaf)")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("release build: %v\n%s", err, releaseUsage)}
	}
	switch fs.NArg() {
	case 0:
	case 1:
		o.GAF = fs.Arg(0)
	default:
		return usageError{"release build takes one .gaf\n" + releaseUsage}
	}
	if *key == "" || o.Version == "" || o.Channel == "" || o.Out == "" {
		return usageError{"release build needs -key, -version, -channel and -out\n" + releaseUsage}
	}
	text, err := os.ReadFile(*key)
	if err != nil {
		return fmt.Errorf("release build: read key: %w", err)
	}
	if o.Key, err = sign.ParsePrivateKey(string(text)); err != nil {
		return fmt.Errorf("release build: %s: %w", *key, err)
	}
	m, reused, err := ota.Build(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "release %s (channel %s) in %s:\n", m.Version, m.Channel, o.Out)
	for _, name := range []string{ota.Root, ota.Boot, ota.MBR} {
		if p, ok := m.Parts[name]; ok {
			fmt.Fprintf(out, "  %-4s %s  %d bytes (%d compressed)\n", name, p.File, p.Size, p.FileSize)
		}
	}
	if len(reused) > 0 {
		fmt.Fprintf(out, "unchanged since %s, not written again (keep on the server): %s\n", o.Previous, strings.Join(reused, ", "))
	}
	fmt.Fprintln(out, "publish: copy the part files into the channel's directory first, manifest.json and manifest.json.sig last")
	return nil
}
