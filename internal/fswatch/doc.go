// Package fswatch tells when a file may have changed, from the kernel's
// inotify (Linux). A notice only says "look now": the caller checks the
// file itself (its contents, or which file the name now is) and keeps a
// slow look on a timer, for systems without inotify and for a watch that
// was started too late or lost events.
//
// It watches the file's directory, since editors, config tools and
// Mosquitto replace a file by renaming another onto its name, and the file
// itself, so that a write through a symlink is seen too. When the
// directory itself is replaced (another renamed onto its path) or removed
// and made again, the watch moves to the directory at the path, with a
// notice:
//
//	w, err := fswatch.File("/perm/osgate.json")
//	if err != nil {
//		// no notices here: look on a timer only
//	}
//	defer w.Close()
//	for range w.C() {
//		// read the file again
//	}
//
// Notices of several changes in a row may arrive as one. When the kernel's
// queue overflows (events were lost), a notice is sent too.
package fswatch
