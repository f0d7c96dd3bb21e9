//go:build linux

package testpeer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SmallFS is a tmpfs of a fixed size that a test fills to run a program
// out of disk space for real: its writes fail with ENOSPC as on a full SD
// card.
type SmallFS struct {
	t   testing.TB
	Dir string

	mu       sync.Mutex
	stopKeep chan struct{} // ends the background filler of Fill(0)
	kept     chan struct{} // closed when it has ended
}

// MountSmallFS mounts a tmpfs of size bytes on a fresh directory. It needs
// root (CAP_SYS_ADMIN) and fails the test, saying so, without it. The file
// system is unmounted when the test ends, after every cleanup registered
// later (a gateway that uses it) has run.
func MountSmallFS(t testing.TB, size int64) *SmallFS {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("testpeer: mount a %d-byte tmpfs on %s: %v (this test fills a small file system: run it as root)", size, dir, err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := syscall.Unmount(dir, 0)
			if err == nil {
				return
			}
			if !errors.Is(err, syscall.EBUSY) || i == 50 {
				// Detach it: it goes once the last file on it is closed.
				if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
					t.Errorf("testpeer: unmount %s: %v", dir, err)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return &SmallFS{t: t, Dir: dir}
}

// Free is the space left, in bytes.
func (f *SmallFS) Free() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(f.Dir, &st); err != nil {
		f.t.Fatalf("testpeer: statfs %s: %v", f.Dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// Fill writes to a filler file until at most leave bytes are free. With
// leave 0 it fills the file system until a write fails with ENOSPC, and
// keeps it full until Empty: space that others free (a program deleting a
// temporary file it could not finish) is taken again within 20 ms.
func (f *SmallFS) Fill(leave int64) {
	f.t.Helper()
	file, err := os.OpenFile(filepath.Join(f.Dir, fmt.Sprintf("filler-%d", time.Now().UnixNano())), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		f.t.Fatalf("testpeer: create a filler file: %v", err)
	}
	if leave > 0 {
		defer file.Close()
		f.fill(file, leave)
		return
	}
	if err := f.fill(file, 0); err != nil {
		file.Close()
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopKeep != nil {
		file.Close()
		return // already kept full
	}
	stop, kept := make(chan struct{}), make(chan struct{})
	f.stopKeep, f.kept = stop, kept
	go func() {
		defer close(kept)
		defer file.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := f.fill(file, 0); err != nil {
				f.t.Error(err)
				return
			}
		}
	}()
	f.t.Cleanup(f.stopFilling)
}

// fill writes to file until at most leave bytes are free, or (leave 0)
// until a one-byte write fails with ENOSPC.
func (f *SmallFS) fill(file *os.File, leave int64) error {
	chunk := make([]byte, 64<<10)
	for {
		n := int64(len(chunk))
		if leave > 0 {
			n = min(n, f.Free()-leave)
			if n <= 0 {
				return nil
			}
		}
		if _, err := file.Write(chunk[:n]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return fmt.Errorf("testpeer: fill %s: %w", f.Dir, err)
			}
			if leave > 0 || len(chunk) == 1 {
				return nil
			}
			chunk = chunk[:len(chunk)/2] // fill the last pages too
		}
	}
}

func (f *SmallFS) stopFilling() {
	f.mu.Lock()
	stop, kept := f.stopKeep, f.kept
	f.stopKeep, f.kept = nil, nil
	f.mu.Unlock()
	if stop != nil {
		close(stop)
		<-kept
	}
}

// Empty stops keeping the file system full and removes every filler file:
// the space they took is free again.
func (f *SmallFS) Empty() {
	f.t.Helper()
	f.stopFilling()
	names, err := filepath.Glob(filepath.Join(f.Dir, "filler-*"))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Remove(n); err != nil {
			f.t.Fatalf("testpeer: remove %s: %v", n, err)
		}
	}
}
