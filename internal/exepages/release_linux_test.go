//go:build linux

package exepages

import (
	"crypto/sha256"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// table is data this test binary builds at start, on the heap (rodata
// below is a constant, in the binary's read-only mapping).
var table = strings.Repeat("osgate gives back the pages it does not use. ", 50000)

// TestRelease drops this test binary's own resident pages and checks that
// fewer are resident right after, that the mappings are still there, and
// that code and read-only data read the same afterwards.
func TestRelease(t *testing.T) {
	before := sha256.Sum256([]byte(table))
	r, err := Release(Unmap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resident pages of the executable: %d kB before, %d kB after", r.Before>>10, r.After>>10)
	if r.Before <= 0 {
		t.Fatalf("nothing of the executable was resident before: %+v", r)
	}
	if r.After >= r.Before/2 {
		t.Fatalf("after Release %d bytes of %d still resident: not given back", r.After, r.Before)
	}
	if after := sha256.Sum256([]byte(table)); after != before {
		t.Fatal("read-only data read differently after Release")
	}
	// The mappings are all still there, and the dropped pages come back
	// when used.
	again, err := Release(Unmap)
	if err != nil {
		t.Fatal(err)
	}
	if again.Before <= r.After || again.Before == 0 {
		t.Fatalf("the pages used since were not mapped again: %+v after %+v", again, r)
	}
}

// rodata is 1 MiB of this test binary's read-only data: a constant, so
// the linker puts it in the executable's rodata mapping (table above is
// built at start, on the heap).
const (
	rodata0 = "osgate reads a page of its binary again alone, not its block. "
	rodata1 = rodata0 + rodata0
	rodata2 = rodata1 + rodata1
	rodata3 = rodata2 + rodata2
	rodata4 = rodata3 + rodata3
	rodata5 = rodata4 + rodata4
	rodata6 = rodata5 + rodata5
	rodata7 = rodata6 + rodata6
	rodata8 = rodata7 + rodata7
	rodata9 = rodata8 + rodata8
	rodataA = rodata9 + rodata9
	rodataB = rodataA + rodataA
	rodataC = rodataB + rodataB
	rodataD = rodataC + rodataC
	rodataE = rodataD + rodataD
	rodata  = rodataE
)

// rodataVar and probe read rodata at an index the compiler cannot fold.
var (
	rodataVar = rodata
	probe     = len(rodata) / 2
)

// inCore is how many of the whole pages of s are in the page cache
// (mincore(2): for a file's mapping, whether the file's page is cached,
// mapped in this process or not).
func inCore(t *testing.T, s string) (in, pages int) {
	t.Helper()
	ps := uintptr(os.Getpagesize())
	base := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	start, end := (base+ps-1)&^(ps-1), (base+uintptr(len(s)))&^(ps-1)
	if end <= start {
		t.Fatalf("%d bytes hold no whole page", len(s))
	}
	vec := make([]byte, (end-start)/ps)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, start, end-start, uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, v := range vec {
		in += int(v & 1)
	}
	return in, len(vec)
}

// TestReleaseLeavesPageCache: the pages Release gives back leave the
// page cache too (this test binary is mapped by this process only), and
// a page read again comes back alone, without read-ahead of its
// neighbours, so fault-around cannot map them; the data reads the same.
// With the pages only unmapped, they all stay cached and one touch maps
// 64 KB around it.
func TestReleaseLeavesPageCache(t *testing.T) {
	before := sha256.Sum256([]byte(rodata))
	if in, pages := inCore(t, rodata); in < pages*9/10 {
		t.Fatalf("%d of %d pages of the read-only data cached right after reading it all", in, pages)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(exe, &st); err != nil {
		t.Fatal(err)
	}
	r, err := Release(PageOut)
	if err != nil {
		t.Fatal(err)
	}
	in, pages := inCore(t, rodata)
	if !pageOutGains(st) {
		// The test binary is on squashfs or in memory (tmpfs): Release
		// unmaps only, and says so.
		if r.PagedOut || in < pages*9/10 {
			t.Fatalf("%s is on squashfs or in memory: PagedOut %t, %d of %d pages cached, want false and all", exe, r.PagedOut, in, pages)
		}
		return
	}
	if !r.PagedOut {
		t.Fatalf("Release(PageOut) on %s: PagedOut false, want true", exe)
	}
	t.Logf("after Release %d of %d pages of the read-only data still cached", in, pages)
	if in > pages/10 {
		t.Fatalf("after Release %d of %d pages of the read-only data still cached, want them out of the page cache "+
			"(a kernel before 5.4 has no MADV_PAGEOUT)", in, pages)
	}
	if b := rodataVar[probe]; b == 0 { // one byte read: one page faulted in
		t.Fatal("a zero in the text")
	}
	again, _ := inCore(t, rodata)
	t.Logf("one byte read: %d pages cached", again)
	if again-in > 4 {
		t.Fatalf("one byte read brought %d pages back into the cache, want its page alone (no read-ahead)", again-in)
	}
	if after := sha256.Sum256([]byte(rodata)); after != before {
		t.Fatal("read-only data read differently after Release")
	}
}
