package export

import (
	"bytes"
	"fmt"
	"os"
)

// segFile is the segment the spool appends to. Where it can (Linux), it
// writes records through a shared mapping of the file instead of a
// write(2) per batch, which costs half as much a record: the bytes are in
// the page cache the moment they are copied, so a killed process loses
// nothing more than with write(2), and the fsync each second covers them
// the same way. The file is extended a chunk past the records (a hole,
// taking no space until written) and only that chunk is mapped, so the
// gateway holds at most one chunk of the spool in memory. A crash leaves
// the rest of the chunk as zeros after the last record, which the reader
// takes as the segment's end; a clean close cuts the file to its records.
// When anything about the mapping fails (mmap refused, a full disk, an
// I/O error) the segment goes on with write(2) from where it stands, so a
// full disk is reported as before.
type segFile struct {
	f    *os.File
	size int64  // bytes of records (and of a torn one after a failed write)
	m    []byte // the mapped chunk, file offsets [mAt, mAt+len(m)); nil: none
	mAt  int64
	// direct: write(2) only (no mapping here, or it failed): the file
	// ends at size and is opened for appending.
	direct bool
}

// openSegFile opens (creating) the segment file at path. A file that
// exists holds no record the spool needs (its name is the next seq): one
// of zeros only, left by a crash before anything was written to it, is
// emptied; one with other bytes is appended to with write(2).
func openSegFile(path string) (*segFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &segFile{f: f, size: st.Size(), direct: !canMap}
	if w.size > 0 && !w.direct {
		data, err := os.ReadFile(path)
		if err == nil && len(bytes.Trim(data, "\x00")) == 0 && f.Truncate(0) == nil {
			w.size = 0
		} else {
			w.direct = true
		}
	}
	return w, nil
}

// write appends b: all of it, or the bytes before the failure.
func (w *segFile) write(b []byte) (int, error) {
	n := 0
	for n < len(b) && !w.direct {
		if w.size == w.mAt+int64(len(w.m)) && !w.mapNext() {
			break // w.direct now: go on with write(2)
		}
		n += w.copyIn(b[n:])
	}
	if n == len(b) {
		return n, nil
	}
	k, err := w.f.Write(b[n:])
	w.size += int64(k)
	return n + k, err
}

// toDirect unmaps the chunk and cuts the file to its records, for
// write(2) to append from there; false if the file could not be cut.
func (w *segFile) toDirect() bool {
	w.unmap()
	w.direct = true
	return w.f.Truncate(w.size) == nil
}

// close cuts the file to its records, fsyncs and closes it.
func (w *segFile) close() error {
	var err error
	if !w.direct && !w.toDirect() {
		err = fmt.Errorf("cut the segment to its records")
	}
	if e := w.f.Sync(); e != nil && err == nil {
		err = e
	}
	w.f.Close()
	return err
}
