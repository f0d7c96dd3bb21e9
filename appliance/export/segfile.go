package export

import (
	"bytes"
	"fmt"
	"os"
)

// segFile is the segment the spool appends to. Where it can (Linux), it
// copies small batches of records (a message or a few, under mapMax
// bytes) into a shared mapping of the file instead of making a write(2)
// for each, which costs half as much a record; larger batches, such as a
// poll of many registers, go by pwrite(2), which is then the cheaper. The
// bytes are in the page cache the moment they are copied either way, so a
// killed process loses nothing more than with write(2), and the fsync each
// second covers them the same way. The file is extended a chunk past the
// records (a hole, taking no space until written) and only that chunk is
// mapped, so the gateway holds at most one chunk of the spool in memory.
// A crash leaves the rest of the chunk as zeros after the last record,
// which the reader takes as the segment's end; a clean close cuts the file
// to its records. When anything about the mapping fails (mmap refused, a
// full disk, an I/O error) the segment goes on with pwrite(2) from where it
// stands, so a full disk is reported as before.
type segFile struct {
	f    *os.File
	size int64  // bytes of records (and of a torn one after a failed write)
	end  int64  // the file's size: size, or the end of the chunk it was extended to
	m    []byte // the mapped chunk, file offsets [mAt, mAt+len(m)); nil: none
	mAt  int64
	// direct: pwrite(2) only (no mapping here, or it failed); the file
	// ends at size.
	direct bool
}

// mapMax: batches of this many bytes or more are written with pwrite(2).
const mapMax = 1 << 10

// openSegFile opens (creating) the segment file at path. A file that
// exists holds no record the spool needs (its name is the next seq): one
// of zeros only, left by a crash before anything was written to it, is
// emptied; one with other bytes is written on after its end.
func openSegFile(path string) (*segFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &segFile{f: f, size: st.Size(), end: st.Size(), direct: !canMap}
	if w.size > 0 && !w.direct {
		data, err := os.ReadFile(path)
		if err == nil && len(bytes.Trim(data, "\x00")) == 0 && f.Truncate(0) == nil {
			w.size, w.end = 0, 0
		} else {
			w.direct = true
		}
	}
	return w, nil
}

// write appends b: all of it, or the bytes before the failure.
func (w *segFile) write(b []byte) (int, error) {
	n := 0
	if len(b) < mapMax {
		for n < len(b) && !w.direct {
			if (w.m == nil || w.size < w.mAt || w.size >= w.mAt+int64(len(w.m))) && !w.mapNext() {
				break // w.direct now
			}
			n += w.copyIn(b[n:])
		}
		if n == len(b) {
			return n, nil
		}
	}
	k, err := w.f.WriteAt(b[n:], w.size)
	w.size += int64(k)
	w.end = max(w.end, w.size)
	return n + k, err
}

// toDirect unmaps the chunk and cuts the file to its records, for
// pwrite(2) to go on from there; false if the file could not be cut.
func (w *segFile) toDirect() bool {
	w.unmap()
	w.direct = true
	if w.end == w.size {
		return true
	}
	if err := w.f.Truncate(w.size); err != nil {
		return false
	}
	w.end = w.size
	return true
}

// close cuts the file to its records, fsyncs and closes it.
func (w *segFile) close() error {
	var err error
	if !w.toDirect() {
		err = fmt.Errorf("cut the segment to its records")
	}
	if e := w.f.Sync(); e != nil && err == nil {
		err = e
	}
	w.f.Close()
	return err
}
