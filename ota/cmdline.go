package ota

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// The try-once boot: gokrazy's own
// /update/testboot never writes its flag (the packer pads cmdline.txt with
// spaces and no newline, the handler looks for a newline), and a fresh
// boot image points root= at partition 2 whichever root is running. So the
// agent rewrites the kernel command line inside the new boot image while
// streaming it to /update/boot: root= becomes the running root and
// gokrazy.try_boot_inactive=1 goes into the padding. At the next boot,
// gokrazy's init replaces the flag with gokrazy.switch_on_boot=1 (3 bytes
// shorter, written in place: hence minPad) and runs the inactive root, the
// new one, once. Any later boot uses root=, the old root, until the new
// system confirms itself with /update/switch.

const (
	tryFlag   = "gokrazy.try_boot_inactive=1"
	afterFlag = "gokrazy.switch_on_boot=1"
	minPad    = len(tryFlag) - len(afterFlag)
	initArg   = " init=/gokrazy/init"
)

// findCmdlines locates gokrazy's padded kernel command lines in a boot
// image: each printable run holding init=/gokrazy/init and a root= (the
// "options " key of a systemd-boot entry left out). A run starts after a
// byte that is not printable, a newline or a sector boundary (a file's data
// starts at one: the byte before may belong to another file), and ends with
// the padding, the first run of two or more spaces after init= (what
// follows may be slack beyond the file's end).
func findCmdlines(img []byte) []Extent {
	var out []Extent
	for from := 0; ; {
		i := bytes.Index(img[from:], []byte(initArg))
		if i < 0 {
			return out
		}
		i += from
		start, end := i, i+len(initArg)
		for start > 0 && start%512 != 0 && printable(img[start-1]) {
			start--
		}
		for end < len(img) && printable(img[end]) && !(img[end] == ' ' && end+1 < len(img) && img[end+1] == ' ') {
			end++
		}
		for end < len(img) && img[end] == ' ' {
			end++
		}
		start += len(optionsPrefix(img[start:end]))
		if bytes.Contains(img[start:end], []byte("root=")) && end-start <= maxCmdline {
			out = append(out, Extent{Offset: int64(start), Length: int64(end - start)})
		}
		from = end
	}
}

func optionsPrefix(b []byte) string {
	if bytes.HasPrefix(b, []byte("options ")) {
		return "options "
	}
	return ""
}

func printable(c byte) bool { return c >= 0x20 && c < 0x7f }

// rootArg returns the root= value of a kernel command line.
func rootArg(cmdline string) (string, error) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "root="); ok && v != "" {
			return v, nil
		}
	}
	return "", errors.New("kernel command line has no root=")
}

// tryBootCmdline rewrites one padded command line of the new boot image for
// a try-once boot: root= becomes root (the running root) and the try flag is
// added; the result has the old length, padded with spaces.
func tryBootCmdline(old []byte, root string) ([]byte, error) {
	if bytes.ContainsFunc(old, func(r rune) bool { return r > 0x7e || r < 0x20 }) {
		return nil, errors.New("try-boot: command line is not printable text")
	}
	var out []string
	sawRoot := false
	for _, f := range strings.Fields(string(old)) {
		switch {
		case strings.HasPrefix(f, "root="):
			if sawRoot {
				return nil, errors.New("try-boot: command line has two root= arguments")
			}
			sawRoot = true
			f = "root=" + root
		case f == tryFlag || f == afterFlag:
			continue
		}
		out = append(out, f)
	}
	if !sawRoot {
		return nil, errors.New("try-boot: command line has no root=")
	}
	out = append(out, tryFlag)
	line := strings.Join(out, " ")
	if len(line)+minPad > len(old) {
		return nil, fmt.Errorf("try-boot: patched command line needs %d bytes, the image has room for %d", len(line)+minPad, len(old))
	}
	return []byte(line + strings.Repeat(" ", len(old)-len(line))), nil
}
