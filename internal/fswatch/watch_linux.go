package fswatch

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Watch tells when the file at a path may have changed: a write to it
// finished (through a symlink too), or a file was renamed onto its name,
// created or removed there.
type Watch struct {
	f       *os.File
	path    string
	changes chan struct{} // capacity 1
}

const (
	dirEvents  = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_CREATE
	fileEvents = unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
)

// File starts watching path, whose directory must exist (the file need
// not); the error says why it cannot, and the caller then looks at the
// file on a timer only.
func File(path string) (*Watch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), dirEvents); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify: watch %s: %w", filepath.Dir(path), err)
	}
	unix.InotifyAddWatch(fd, path, fileEvents) // may not exist yet: the directory's events say when it does
	w := &Watch{f: os.NewFile(uintptr(fd), "inotify"), path: path, changes: make(chan struct{}, 1)}
	go w.read()
	return w, nil
}

// C delivers a notice after a change; one notice waits there at most.
func (w *Watch) C() <-chan struct{} { return w.changes }

// Close ends the watch and frees its file descriptor; C is not closed.
func (w *Watch) Close() error { return w.f.Close() }

// read turns the kernel's events into notices until the watch is closed.
func (w *Watch) read() {
	buf := make([]byte, 4<<10) // an event is at most 16 bytes and a name of up to 255
	name := filepath.Base(w.path)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed
		}
		hit := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nlen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			start := off + unix.SizeofInotifyEvent
			end := min(start+nlen, n)
			evName := string(trimNUL(buf[start:end]))
			if evName == "" || evName == name || mask&unix.IN_Q_OVERFLOW != 0 {
				hit = true // the file itself (no name), or its name in the directory
			}
			off = start + nlen
		}
		if hit {
			w.follow()
			select {
			case w.changes <- struct{}{}:
			default:
			}
		}
	}
}

// follow watches the file at path again: one replaced by a rename, or
// created since. It holds the descriptor while it does, so a Close at the
// same time cannot hand the number to another file first.
func (w *Watch) follow() {
	if rc, err := w.f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { unix.InotifyAddWatch(int(fd), w.path, fileEvents) })
	}
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
