//go:build linux

package exepages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Binary is the executable's read-only mappings, as found by Open; one
// goroutine at a time may use it.
type Binary struct {
	ms      []span
	maps    int     // how many mappings the process had at Open
	ps      uintptr // the page size
	tried   bool    // a release has tried to split the mappings
	entries []uint64
}

// Open finds the executable's read-only mappings (those without a page
// of the process's own: see the package comment).
func Open() (*Binary, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, maps, err := readOnlyMappings(f, exe)
	if err != nil {
		return nil, err
	}
	return &Binary{ms: ms, maps: maps, ps: uintptr(os.Getpagesize())}, nil
}

// Release drops the resident pages of the binary's read-only mappings
// from this process (they stay in the page cache). The first call first
// splits the mappings into mappings of one page each, so that the
// kernel's fault-around maps no neighbour with a page used again (see
// the package comment). It returns the resident bytes before and right
// after.
func (b *Binary) Release() (Result, error) {
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return Result{}, err
	}
	defer pm.Close()
	var r Result
	if !b.tried {
		b.tried = true
		r.SplitErr = b.split()
		r.Split = r.SplitErr == nil
	}
	if r.Before, err = b.pass(pm, true); err != nil {
		return r, err
	}
	r.After, err = b.pass(pm, false)
	return r, err
}

// pass counts the resident bytes of the mappings and, with drop, drops
// what may be dropped (droppable) after counting.
func (b *Binary) pass(pm *os.File, drop bool) (int64, error) {
	var n int64
	for _, m := range b.ms {
		entries, err := b.pagemap(pm, m)
		if err != nil {
			return n, err
		}
		spans, resident := droppable(entries, m.start, b.ps)
		n += int64(resident) * int64(b.ps)
		for i := 0; drop && i < len(spans); i++ {
			if err := madvise(spans[i].start, spans[i].end, unix.MADV_DONTNEED, "MADV_DONTNEED"); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// split makes each page of the mappings a mapping of its own: it marks
// the pages at odd page numbers MADV_DONTDUMP, and the kernel keeps
// neighbours whose flags differ in different mappings. Fault-around maps
// the page cache's pages around a fault only within the fault's mapping,
// so a page used again comes alone. The flag itself only leaves those
// pages out of a core dump, which holds a binary's pages only when
// asked to (coredump_filter). Each mapping costs the kernel about 200
// bytes, and a process may have vm.max_map_count of them: split refuses
// to take more than half of what is left. A split stopped half way (the
// kernel out of memory) is harmless: those pages are split.
func (b *Binary) split() error {
	var pages uintptr
	for _, m := range b.ms {
		pages += (m.end - m.start) / b.ps
	}
	limit, err := maxMapCount()
	if err != nil {
		return err
	}
	if err := splitFits(int(pages), b.maps, limit); err != nil {
		return err
	}
	for _, m := range b.ms {
		at := m.start
		if at/b.ps%2 == 0 {
			at += b.ps
		}
		for ; at < m.end; at += 2 * b.ps {
			err := madvise(at, min(at+b.ps, m.end), unix.MADV_DONTDUMP, "MADV_DONTDUMP")
			if errors.Is(err, syscall.ENOMEM) {
				return errors.New("not split: the kernel refused a mapping more (ENOMEM)")
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// maxMapCount is how many mappings a process may have
// (vm.max_map_count).
func maxMapCount() (int, error) {
	lim, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(lim)))
	if err != nil {
		return 0, fmt.Errorf("vm.max_map_count %q: %w", lim, err)
	}
	return n, nil
}

// pagemap reads m's entries of /proc/self/pagemap (8 bytes a page; the
// buffer is kept for the next release).
func (b *Binary) pagemap(pm *os.File, m span) ([]uint64, error) {
	n := int((m.end - m.start) / b.ps)
	if cap(b.entries) < n {
		b.entries = make([]uint64, n)
	}
	entries := b.entries[:n]
	at := int64(m.start/b.ps) * 8
	if err := binary.Read(io.NewSectionReader(pm, at, int64(8*n)), binary.NativeEndian, entries); err != nil {
		return nil, fmt.Errorf("pagemap %x-%x: %w", m.start, m.end, err)
	}
	return entries, nil
}

func madvise(start, end, advice uintptr, name string) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, advice); errno != 0 {
		return fmt.Errorf("madvise %s %x-%x: %w", name, start, end, errno)
	}
	return nil
}
