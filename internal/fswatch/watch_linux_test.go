package fswatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// notice waits for the watch's next notice, failing after 10 s.
func notice(t *testing.T, w *Watch, what string) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no notice within 10s", what)
	}
}

// writeFile writes data to path, failing the test if it cannot.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// quiet says no notice is waiting, after the kernel had time to deliver one.
func quiet(t *testing.T, w *Watch, what string) {
	t.Helper()
	select {
	case <-w.C():
		t.Fatalf("%s: a notice for another file", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestFileNotices: a notice comes for each way a file is changed or
// replaced (written in place, another renamed onto it as Mosquitto saves
// mosquitto.db, created, removed, written through a symlink, and the
// target of a symlink written), and none for other files of the directory.
func TestFileNotices(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mosquitto.db")
	w, err := File(path) // the file does not exist yet
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Another file's writes and renames say nothing of this one.
	writeFile(t, filepath.Join(dir, "other"), "x")
	if err := os.Rename(filepath.Join(dir, "other"), filepath.Join(dir, "other2")); err != nil {
		t.Fatal(err)
	}
	quiet(t, w, "another file")

	// Created.
	writeFile(t, path, "1")
	notice(t, w, "created")
	drain(w)

	// Mosquitto's save: written under another name, then renamed onto it.
	writeFile(t, path+".new", "2")
	quiet(t, w, "the .new file written")
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "renamed onto")
	drain(w)

	// Written in place, after it was replaced by a rename.
	writeFile(t, path, "3")
	notice(t, w, "written in place")
	drain(w)

	// Removed.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "removed")
	drain(w)

	// A symlink to a file elsewhere, and that file written.
	elsewhere := filepath.Join(t.TempDir(), "real")
	writeFile(t, elsewhere, "4")
	if err := os.Symlink(elsewhere, path); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "symlink created")
	drain(w)
	writeFile(t, elsewhere, "5")
	notice(t, w, "the symlink's target written")
}

// drain takes a notice that waits from events of the same change that
// arrived apart.
func drain(w *Watch) {
	time.Sleep(100 * time.Millisecond)
	select {
	case <-w.C():
	default:
	}
}

// TestFileMissingDir: without the directory there is nothing to watch.
func TestFileMissingDir(t *testing.T) {
	if _, err := File(filepath.Join(t.TempDir(), "gone", "f")); err == nil {
		t.Fatal("File of a path in a missing directory: no error")
	}
}

// TestCloseFreesDescriptor: Close ends the watch and gives its inotify
// descriptor back; a hundred watches opened and closed leave none.
func TestCloseFreesDescriptor(t *testing.T) {
	dir := t.TempDir()
	before := testpeer.InotifyFDs(t)
	for range 100 {
		w, err := File(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if n := testpeer.InotifyFDs(t); n != before+1 {
			t.Fatalf("%d inotify descriptors with one watch open, %d before", n, before)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := testpeer.InotifyFDs(t); n != before {
		t.Fatalf("%d inotify descriptors after the watches closed, %d before", n, before)
	}
}

// TestDirectoryReplaced: the watch follows the file's directory when it
// is replaced (another renamed onto its path, as a config tool deploys a
// directory) or removed and made again, with a notice for each; a change
// of the file in the new directory gives a notice too, and one in the old
// directory, moved elsewhere, none.
func TestDirectoryReplaced(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "osgate")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "osgate.json")
	writeFile(t, path, "1")
	w, err := File(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// A new directory renamed onto the old one's path (the old moved aside).
	next := filepath.Join(root, "osgate.next")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(next, "osgate.json"), "2")
	drain(w)
	old := filepath.Join(root, "osgate.old")
	if err := os.Rename(dir, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "the directory replaced")
	drain(w)
	writeFile(t, filepath.Join(old, "osgate.json"), "x")
	quiet(t, w, "the old directory's file written")
	writeFile(t, path, "3")
	notice(t, w, "written in the new directory")
	drain(w)

	// Removed, and made again a while later.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "the directory removed")
	drain(w)
	time.Sleep(1500 * time.Millisecond)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "the directory made again")
	drain(w)
	writeFile(t, path, "4")
	notice(t, w, "written in the directory made again")
}
