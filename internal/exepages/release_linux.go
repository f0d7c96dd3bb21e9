//go:build linux

package exepages

import (
	"fmt"
	"os"
	"syscall"
)

// Release drops the resident pages of the executable's read-only
// mappings from this process (see the package comment). It returns the resident bytes of those
// mappings before and right after.
func Release() (Result, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, err
	}
	ms, err := mappings(exe)
	if err != nil {
		return Result{}, err
	}
	var r Result
	for _, m := range ms {
		r.Before += m.rss
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); errno != 0 {
			return r, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, errno)
		}
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

func mappings(exe string) ([]mapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOnlyMappings(f, exe)
}
