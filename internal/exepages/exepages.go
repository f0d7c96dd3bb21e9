package exepages

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mode is how Release gives the pages back.
type Mode int

const (
	// PageOut pages them out: they leave the page cache too, and a page
	// used again is read again from the file, alone. Once, when the
	// start is over.
	PageOut Mode = iota
	// Unmap unmaps them only: they stay in the page cache, and a page
	// used again is mapped again at a minor fault. Now and then after a
	// PageOut, for what rare work mapped since.
	Unmap
)

// Result is what one Release did, in bytes of the executable's read-only
// mappings that were resident before and after, and whether the pages
// were paged out (PageOut where it works: not on squashfs, nor on a
// kernel before 5.4) or only unmapped.
type Result struct {
	Before, After int64
	PagedOut      bool
}

// mapping is one mapping of the executable that Release may drop.
type mapping struct {
	start, end uintptr
	rss        int64 // resident bytes
}

// maxMappings bounds what is read from smaps; a Go executable has three
// or four mappings of its file.
const maxMappings = 64

// readOnlyMappings reads smaps (the format of /proc/self/smaps) and
// returns the mappings of the file exe that are neither writable nor hold
// an anonymous page: the ones whose every resident page is the file's.
func readOnlyMappings(smaps io.Reader, exe string) ([]mapping, error) {
	var (
		out     []mapping
		cur     mapping
		inExe   bool // the current mapping is a read-only one of exe
		anon    int64
		sawRss  bool
		sawAnon bool
	)
	flush := func() error {
		if inExe {
			if !sawRss || !sawAnon {
				return fmt.Errorf("smaps: the mapping %x-%x has no Rss or Anonymous line", cur.start, cur.end)
			}
			if anon == 0 {
				if len(out) == maxMappings {
					return fmt.Errorf("smaps: more than %d mappings of %s", maxMappings, exe)
				}
				out = append(out, cur)
			}
		}
		inExe, anon, sawRss, sawAnon = false, 0, false, false
		return nil
	}
	sc := bufio.NewScanner(smaps)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if start, end, ok := addresses(f[0]); ok {
			if err := flush(); err != nil {
				return nil, err
			}
			// start-end perms offset dev inode path
			inExe = len(f) >= 6 && strings.Join(f[5:], " ") == exe &&
				len(f[1]) == 4 && f[1][0] == 'r' && f[1][1] == '-' && f[1][3] == 'p'
			cur = mapping{start: start, end: end}
			continue
		}
		if !inExe || len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Rss:":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps: Rss %q: %w", f[1], err)
			}
			cur.rss, sawRss = kb<<10, true
		case "Anonymous:":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps: Anonymous %q: %w", f[1], err)
			}
			anon, sawAnon = kb, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smaps: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// addresses parses a first field that starts a mapping ("start-end").
func addresses(s string) (start, end uintptr, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(a, 16, 64)
	y, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil || y <= x {
		return 0, 0, false
	}
	return uintptr(x), uintptr(y), true
}
