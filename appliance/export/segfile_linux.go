package export

import (
	"os"
	"runtime/debug"
	"syscall"
)

// canMap: segments are written through a mapping (see segFile).
const canMap = true

// mapChunk is how far a segment file is extended past its records and
// mapped at a time: the gateway's RSS holds at most this much of the
// spool. Each chunk costs an ftruncate, an mmap and a munmap (about
// 130 µs together on the CI machines, most of it the munmap), so smaller
// chunks cost more a message.
const mapChunk = 256 << 10

var pageSize = os.Getpagesize()

// mapNext maps the chunk of the file that begins at the page of size,
// extending the file to the chunk's end first (a hole: no space is taken
// before a page is written). On any failure it turns the segment to
// pwrite(2) and returns false.
func (w *segFile) mapNext() bool {
	w.unmap()
	at := w.size &^ int64(pageSize-1)
	if at+mapChunk > w.end {
		if w.f.Truncate(at+mapChunk) != nil {
			w.toDirect()
			return false
		}
		w.end = at + mapChunk
	}
	m, err := syscall.Mmap(int(w.f.Fd()), at, mapChunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		w.toDirect()
		return false
	}
	w.m, w.mAt = m, at
	return true
}

// copyIn copies what of b fits into the mapped chunk. The file system
// takes the space for a page when it is first written; on a full disk it
// cannot, and the copy faults (SIGBUS), as an I/O error reading a page
// back would. That is never a crash: the segment turns to pwrite(2) from
// the last whole copy on, and pwrite(2) then reports the error itself
// (ENOSPC, EIO), which the gateway tells apart (a full disk).
func (w *segFile) copyIn(b []byte) (k int) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			k = 0
			w.toDirect()
		}
	}()
	k = copy(w.m[w.size-w.mAt:], b)
	w.size += int64(k)
	return k
}

func (w *segFile) unmap() {
	if w.m != nil {
		_ = syscall.Munmap(w.m)
		w.m = nil
	}
}
