//go:build linux

package exepages

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release drops the resident pages of the executable's read-only
// mappings from this process and, with PageOut and where no other
// process maps them, from the page cache (see the package comment). It
// returns the resident bytes of those mappings before and right after.
func Release(mode Mode) (Result, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, err
	}
	ms, err := mappings(exe)
	if err != nil {
		return Result{}, err
	}
	if mode == PageOut {
		mode = prepare(exe)
	}
	r := Result{PagedOut: mode == PageOut}
	for _, m := range ms {
		r.Before += m.rss
		out, err := release(m, mode)
		if err != nil {
			return r, err
		}
		r.PagedOut = r.PagedOut && out
	}
	after, err := mappings(exe)
	if err != nil {
		return r, err
	}
	for _, m := range after {
		r.After += m.rss
	}
	return r, nil
}

// release gives m's pages back, and says whether they were paged out.
// PageOut marks m for page-at-a-time reads (MADV_RANDOM: no read-ahead
// of neighbours when a page is read again) and pages it out
// (MADV_PAGEOUT); a kernel without MADV_PAGEOUT (before Linux 5.4) says
// EINVAL, and there the pages are unmapped as with Unmap (MADV_DONTNEED)
// and stay in the page cache.
func release(m mapping, mode Mode) (bool, error) {
	if mode == PageOut {
		if err := madvise(m, unix.MADV_RANDOM, "MADV_RANDOM"); err != nil {
			return false, err
		}
		err := madvise(m, unix.MADV_PAGEOUT, "MADV_PAGEOUT")
		if !errors.Is(err, syscall.EINVAL) {
			return err == nil, err
		}
	}
	return false, madvise(m, unix.MADV_DONTNEED, "MADV_DONTNEED")
}

func madvise(m mapping, advice uintptr, name string) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, advice); errno != 0 {
		return fmt.Errorf("madvise %s %x-%x: %w", name, m.start, m.end, errno)
	}
	return nil
}

// prepare readies exe for a page-out and says how to release it:
// PageOut, or Unmap where paging out gains nothing (pageOutGains). Pages
// written and not yet on disk (a binary installed moments ago) cannot be
// paged out, so they are written first; a file that cannot be synced (a
// read-only filesystem: none are dirty there) is paged out as it is.
func prepare(exe string) Mode {
	f, err := os.Open(exe)
	if err != nil {
		return PageOut // madvise does not need the file open
	}
	defer f.Close()
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) == nil && !pageOutGains(st) {
		return Unmap
	}
	_ = f.Sync()
	return PageOut
}

// pageOutGains says whether paging out the pages of a file on st's
// filesystem can take them out of memory: not on squashfs (the appliance
// image's root) nor on tmpfs or ramfs. Squashfs reads a whole compressed
// block (gokrazy's: 128 KB) to read one page of it and puts every page of
// the block in the page cache, so a page read again after a page-out
// brings its neighbours back and fault-around maps them: paging out would
// only cost decompressing every block in use again (measured: the same
// peak RSS at 10 Hz Modbus as with Unmap, docs/benchmarks.md). A file in
// memory has no page cache to leave (without swap its pages stay; with
// swap they would be written out to be read back).
func pageOutGains(st unix.Statfs_t) bool {
	switch uint32(st.Type) { // int32 on 32-bit ARM, int64 on amd64 and arm64
	case unix.SQUASHFS_MAGIC, unix.TMPFS_MAGIC, unix.RAMFS_MAGIC:
		return false
	}
	return true
}

func mappings(exe string) ([]mapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOnlyMappings(f, exe)
}
