package source

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fileWatch tells when the local file may have changed, from the kernel's
// inotify: a write to it finished (through a symlink too), or a file was
// renamed onto its name, created or removed there. It watches the file's
// directory, since editors and config tools replace the file by renaming
// another onto it, and the file itself.
type fileWatch struct {
	f       *os.File
	fd      int // f's, for adding watches (f.Fd would make reads block)
	path    string
	changes chan struct{} // capacity 1
}

const (
	dirEvents  = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_CREATE
	fileEvents = unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
)

// watchFile starts watching path; the error says why it cannot (the
// source then looks at the file every LocalPoll instead).
func watchFile(path string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), dirEvents); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify: watch %s: %w", filepath.Dir(path), err)
	}
	unix.InotifyAddWatch(fd, path, fileEvents) // may not exist yet: the directory's events say when it does
	w := &fileWatch{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, path: path, changes: make(chan struct{}, 1)}
	go w.read()
	return w, nil
}

// read turns the kernel's events into changes until the watch is closed.
func (w *fileWatch) read() {
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
			// Follow a file replaced by a rename, or one created since.
			unix.InotifyAddWatch(w.fd, w.path, fileEvents)
			select {
			case w.changes <- struct{}{}:
			default:
			}
		}
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

func (w *fileWatch) close() { w.f.Close() }
