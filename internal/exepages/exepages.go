package exepages

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bits of a /proc/PID/pagemap entry (the kernel's
// Documentation/admin-guide/mm/pagemap.rst).
const (
	pagePresent = 1 << 63 // the page is mapped in the process
	pageSwapped = 1 << 62 // the process's own copy, swapped out
	pageFile    = 1 << 61 // a page of the file (else the process's own copy)
)

// Result is what one Release did: the resident bytes of the executable's
// read-only mappings before and right after, and whether this release
// split them into mappings of a page each (the first release does,
// where the kernel lets it; SplitErr says why not).
type Result struct {
	Before, After int64
	Split         bool
	SplitErr      error
}

// span is a range of addresses, [start, end): a mapping of the
// executable that Release may drop (adjacent ones joined), or a part of
// one.
type span struct{ start, end uintptr }

// maxMappings bounds what is returned from smaps; a Go executable has
// three or four mappings of its file, and adjacent ones are joined.
const maxMappings = 64

// readOnlyMappings reads smaps (the format of /proc/self/smaps) and
// returns the mappings of the file exe that are neither writable nor hold
// an anonymous page: the ones whose every resident page is the file's.
// Adjacent ones are returned as one (code and read-only data, or the
// pages of mappings a Release split). total is how many mappings the
// process has, of any file or none.
func readOnlyMappings(smaps io.Reader, exe string) (out []span, total int, err error) {
	var (
		cur     span
		inExe   bool // the current mapping is a read-only one of exe
		anon    int64
		sawAnon bool
	)
	flush := func() error {
		if inExe {
			if !sawAnon {
				return fmt.Errorf("smaps: the mapping %x-%x has no Anonymous line", cur.start, cur.end)
			}
			if anon == 0 {
				if n := len(out); n > 0 && out[n-1].end == cur.start {
					// The next page or part of the binary (one
					// Release split the mappings into pages).
					out[n-1].end = cur.end
					return nil
				}
				if len(out) == maxMappings {
					return fmt.Errorf("smaps: more than %d mappings of %s", maxMappings, exe)
				}
				out = append(out, cur)
			}
		}
		inExe, anon, sawAnon = false, 0, false
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
				return nil, 0, err
			}
			total++
			// start-end perms offset dev inode path
			inExe = len(f) >= 6 && strings.Join(f[5:], " ") == exe &&
				len(f[1]) == 4 && f[1][0] == 'r' && f[1][1] == '-' && f[1][3] == 'p'
			cur = span{start: start, end: end}
			continue
		}
		if inExe && len(f) >= 2 && f[0] == "Anonymous:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("smaps: Anonymous %q: %w", f[1], err)
			}
			anon, sawAnon = kb, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("smaps: %w", err)
	}
	if err := flush(); err != nil {
		return nil, 0, err
	}
	return out, total, nil
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

// droppable reads the pagemap entries of the pages of a mapping starting
// at start, one entry a page of size ps. It returns how many of them are
// resident and the spans that may be dropped: every page but those the
// process holds a copy of its own (present and not the file's: written
// since, e.g. a debugger's breakpoint, or such a copy swapped out),
// which a drop would lose. Pages not resident are dropped with their
// neighbours (a no-op for them), so a mapping without such a copy is one
// span.
func droppable(entries []uint64, start, ps uintptr) (spans []span, resident int) {
	from := start
	for i, e := range entries {
		if e&pagePresent != 0 {
			resident++
			if e&pageFile != 0 {
				continue
			}
		} else if e&pageSwapped == 0 {
			continue
		}
		at := start + uintptr(i)*ps
		if at > from {
			spans = append(spans, span{from, at})
		}
		from = at + ps
	}
	if end := start + uintptr(len(entries))*ps; end > from {
		spans = append(spans, span{from, end})
	}
	return spans, resident
}

// splitFits says whether splitting pages pages into mappings of their own
// leaves room: a process with have mappings may have limit
// (vm.max_map_count), and the split takes at most half of what is left,
// so that the Go runtime and the rest of the program can still map
// memory.
func splitFits(pages, have, limit int) error {
	if left := limit - have; pages > left/2 {
		return fmt.Errorf("not split: %d pages, and %d of vm.max_map_count %d mappings left", pages, max(left, 0), limit)
	}
	return nil
}
