package fswatch

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osgate/osgate/internal/backoff"
)

// Watch tells when the file at a path may have changed: a write to it
// finished (through a symlink too), or a file was renamed onto its name,
// created or removed there. When its directory is moved or removed, the
// watch follows the path: it watches the directory there again as soon
// as there is one (looking again after 10 ms, doubling up to a second),
// with a notice.
type Watch struct {
	f       *os.File
	path    string
	changes chan struct{} // capacity 1
	closed  chan struct{}
	once    sync.Once

	mu            sync.Mutex
	dirWD, fileWD int32 // -1: none

	rewatching atomic.Bool
}

const (
	dirEvents  = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_CREATE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	fileEvents = unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	dirGone    = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED
)

// rewatchPolicy is how often a moved or removed directory is looked for.
var rewatchPolicy = backoff.Policy{First: 10 * time.Millisecond, Max: time.Second}

// File starts watching path, whose directory must exist (the file need
// not); the error says why it cannot, and the caller then looks at the
// file on a timer only.
func File(path string) (*Watch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	dwd, err := unix.InotifyAddWatch(fd, filepath.Dir(path), dirEvents)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify: watch %s: %w", filepath.Dir(path), err)
	}
	fwd, err := unix.InotifyAddWatch(fd, path, fileEvents) // may not exist yet: the directory's events say when it does
	if err != nil {
		fwd = -1
	}
	w := &Watch{f: os.NewFile(uintptr(fd), "inotify"), path: path, changes: make(chan struct{}, 1),
		closed: make(chan struct{}), dirWD: int32(dwd), fileWD: int32(fwd)}
	go w.read()
	return w, nil
}

// C delivers a notice after a change; one notice waits there at most.
func (w *Watch) C() <-chan struct{} { return w.changes }

// Close ends the watch and frees its file descriptor; C is not closed.
func (w *Watch) Close() error {
	w.once.Do(func() { close(w.closed) })
	return w.f.Close()
}

// read turns the kernel's events into notices until the watch is closed.
func (w *Watch) read() {
	buf := make([]byte, 4<<10) // an event is at most 16 bytes and a name of up to 255
	name := filepath.Base(w.path)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed
		}
		hit, gone := false, false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			if mask&dirGone != 0 && w.isDir(wd) {
				gone = true // the directory moved or removed: its path is watched again below
			}
			nlen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			start := off + unix.SizeofInotifyEvent
			end := min(start+nlen, n)
			evName := string(trimNUL(buf[start:end]))
			if evName == "" || evName == name || mask&unix.IN_Q_OVERFLOW != 0 {
				hit = true // the file itself (no name), or its name in the directory
			}
			off = start + nlen
		}
		if gone {
			hit = true
			w.rewatch()
		}
		if hit {
			w.follow()
			w.notify()
		}
	}
}

func (w *Watch) notify() {
	select {
	case w.changes <- struct{}{}:
	default:
	}
}

func (w *Watch) isDir(wd int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return wd == w.dirWD
}

// rewatch stops watching the directory that was at the path (moved
// elsewhere, its file's changes are not this watch's) and watches the
// directory at the path again once there is one, with a notice then.
func (w *Watch) rewatch() {
	w.control(func(fd int) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.dirWD >= 0 {
			unix.InotifyRmWatch(fd, uint32(w.dirWD)) // fails when the kernel dropped it already
			w.dirWD = -1
		}
	})
	if !w.rewatching.CompareAndSwap(false, true) {
		return // already looking
	}
	go func() {
		defer w.rewatching.Store(false)
		for failures := 1; ; failures++ {
			select {
			case <-w.closed:
				return
			case <-time.After(rewatchPolicy.Delay(failures)):
			}
			added := false
			w.control(func(fd int) {
				if wd, err := unix.InotifyAddWatch(fd, filepath.Dir(w.path), dirEvents); err == nil {
					w.mu.Lock()
					w.dirWD, added = int32(wd), true
					w.mu.Unlock()
				}
			})
			if added {
				w.follow()
				w.notify()
				return
			}
		}
	}()
}

// control runs fn with the inotify descriptor, unless the watch is
// closed; it holds the descriptor while fn runs, so a Close at the same
// time cannot hand the number to another file first.
func (w *Watch) control(fn func(fd int)) {
	if rc, err := w.f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
	}
}

// follow watches the file at path again: one replaced by a rename, or
// created since; the file that was there before, if it still exists
// elsewhere (its directory moved), is no longer watched.
func (w *Watch) follow() {
	w.control(func(fd int) {
		wd, err := unix.InotifyAddWatch(fd, w.path, fileEvents)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			wd = -1
		}
		if w.fileWD >= 0 && int32(wd) != w.fileWD && w.fileWD != w.dirWD {
			unix.InotifyRmWatch(fd, uint32(w.fileWD))
		}
		w.fileWD = int32(wd)
	})
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
