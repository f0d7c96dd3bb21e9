//go:build linux

package exepages

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
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
	bin, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	r, err := bin.Release()
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
	again, err := bin.Release()
	if err != nil {
		t.Fatal(err)
	}
	if again.Before <= r.After || again.Before == 0 {
		t.Fatalf("the pages used since were not mapped again: %+v after %+v", again, r)
	}
	// The pages are found again after a split, as the mappings they were.
	if reopened, err := Open(); err != nil || len(reopened.ms) != len(bin.ms) {
		t.Fatalf("after the split Open found %d mappings (%v), want %d", len(reopened.ms), err, len(bin.ms))
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

// resident is how many of the pages of [start, end) are mapped in this
// process (pagemap), read through b's buffers.
func resident(t *testing.T, b *Binary, start, end uintptr) int {
	t.Helper()
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	entries, err := b.pagemap(pm, span{start: start, end: end})
	if err != nil {
		t.Fatal(err)
	}
	_, n := droppable(entries, start, b.ps)
	return n
}

// pagesOf is the whole pages that s covers.
func pagesOf(t *testing.T, s string) (start, end uintptr) {
	t.Helper()
	ps := uintptr(os.Getpagesize())
	base := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	start, end = (base+ps-1)&^(ps-1), (base+uintptr(len(s)))&^(ps-1)
	if end <= start {
		t.Fatalf("%d bytes hold no whole page", len(s))
	}
	return start, end
}

// fileMapping maps a file of n pages (in the page cache: just written)
// private and read-only, as the binary is, and reads it all.
func fileMapping(t *testing.T, n int, prot int) []byte {
	t.Helper()
	ps := os.Getpagesize()
	data := make([]byte, n*ps)
	for i := range data {
		data[i] = byte(i/ps + 1)
	}
	path := filepath.Join(t.TempDir(), "binary")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), prot, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	for i := 0; i < len(m); i += ps {
		if m[i] != byte(i/ps+1) {
			t.Fatalf("page %d reads %d", i/ps, m[i])
		}
	}
	return m
}

// TestReleaseMapsPagesAlone: after the first Release, a page used again
// is mapped alone, although its neighbours are in the page cache, as
// they are where the binary is on squashfs (which caches whole 128 KB
// blocks) or in tmpfs. Unmapped only, as before the split, one byte read
// maps the neighbours the kernel's fault-around finds cached: the control
// half of the test shows this kernel does.
func TestReleaseMapsPagesAlone(t *testing.T) {
	const n = 256
	ps := uintptr(os.Getpagesize())
	m := fileMapping(t, n, unix.PROT_READ)
	start := uintptr(unsafe.Pointer(&m[0]))
	end := start + n*ps
	b := &Binary{ms: []span{{start: start, end: end}}, ps: ps}
	if got := resident(t, b, start, end); got != n {
		t.Fatalf("%d of %d pages mapped after reading them all", got, n)
	}

	// The control: unmapped only.
	if err := madvise(start, end, unix.MADV_DONTNEED, "MADV_DONTNEED"); err != nil {
		t.Fatal(err)
	}
	if m[100*ps] != 101 {
		t.Fatal("page 100 reads differently")
	}
	around := resident(t, b, start, end)
	t.Logf("unmapped only, one byte read maps %d pages", around)
	if around < 2 {
		t.Fatalf("unmapped only, one byte read mapped %d page: this kernel has no fault-around "+
			"(fault_around_bytes), so this test cannot show what the split changes", around)
	}

	r, err := b.Release()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Split || r.SplitErr != nil {
		t.Fatalf("the first Release did not split: %+v", r)
	}
	if r.Before != int64(around)*int64(ps) || r.After != 0 {
		t.Fatalf("Release: %d bytes resident before, %d after, want %d and 0", r.Before, r.After, int64(around)*int64(ps))
	}
	for _, p := range []uintptr{100, 101, 0, n - 1} {
		if m[p*ps+7] != byte(p+1) {
			t.Fatalf("page %d reads differently after the split", p)
		}
		if got := resident(t, b, start, end); got != 1 {
			t.Fatalf("after the split, one byte read of page %d mapped %d pages, want 1", p, got)
		}
		if err := madvise(start, end, unix.MADV_DONTNEED, "MADV_DONTNEED"); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := b.Release(); err != nil || r.Split || r.SplitErr != nil {
		t.Fatalf("a later Release: %+v, %v; want no split tried again", r, err)
	}
}

// TestReleaseKeepsOwnPages: a page the process holds a copy of its own
// (written since, as a debugger's breakpoint would be) is never dropped,
// which would lose the write; its neighbours are.
func TestReleaseKeepsOwnPages(t *testing.T) {
	const n = 64
	ps := uintptr(os.Getpagesize())
	m := fileMapping(t, n, unix.PROT_READ|unix.PROT_WRITE)
	m[10*int(ps)+3] = 0xAB
	start := uintptr(unsafe.Pointer(&m[0]))
	b := &Binary{ms: []span{{start: start, end: start + n*ps}}, ps: ps}
	r, err := b.Release()
	if err != nil {
		t.Fatal(err)
	}
	if r.After != int64(ps) {
		t.Fatalf("%d bytes resident after Release, want the written page alone (%d)", r.After, ps)
	}
	if m[10*int(ps)+3] != 0xAB {
		t.Fatal("the page written was dropped: the write is lost")
	}
	if m[11*int(ps)] != 12 || m[9*int(ps)] != 10 {
		t.Fatal("the neighbours read differently")
	}
}

// TestReleaseReadOnlyDataAlone: this test binary's own read-only data,
// after a Release, maps a page at a time.
func TestReleaseReadOnlyDataAlone(t *testing.T) {
	before := sha256.Sum256([]byte(rodata))
	bin, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bin.Release(); err != nil {
		t.Fatal(err)
	}
	start, end := pagesOf(t, rodata)
	if got := resident(t, bin, start, end); got > 2 {
		t.Fatalf("%d pages of the read-only data mapped right after Release", got)
	}
	if b := rodataVar[probe]; b == 0 { // one byte read: one page mapped
		t.Fatal("a zero in the text")
	}
	if got := resident(t, bin, start, end); got != 1 {
		t.Fatalf("one byte of the read-only data read: %d of its pages mapped, want 1", got)
	}
	if after := sha256.Sum256([]byte(rodata)); after != before {
		t.Fatal("read-only data read differently after Release")
	}
}
