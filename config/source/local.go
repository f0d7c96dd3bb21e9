package source

import (
	"fmt"
	"os"
	"time"
)

// localFile notices changes of the local file: a cheap stat first, and the
// document's version only when size or modification time moved.
type localFile struct {
	path    string
	size    int64
	mtime   time.Time
	version string // of the last document read
}

// read returns the file's document and version and remembers them.
func (l *localFile) read() (doc []byte, version string, err error) {
	st, err := os.Stat(l.path)
	if err != nil {
		return nil, "", fmt.Errorf("read local config: %w", err)
	}
	doc, err = os.ReadFile(l.path)
	if err != nil {
		return nil, "", fmt.Errorf("read local config: %w", err)
	}
	l.size, l.mtime, l.version = st.Size(), st.ModTime(), versionOf(doc)
	return doc, l.version, nil
}

// reread is changed without the stat first, for when the system said
// the file changed: a rewrite within the file system's time granularity
// can keep its size and modification time.
func (l *localFile) reread() ([]byte, error) {
	old := l.version
	doc, v, err := l.read()
	if err != nil || v == old {
		return nil, err
	}
	return doc, nil
}

// changed returns the document when the file's content differs from the
// last one read, or nil. A file that cannot be read is an error each time.
func (l *localFile) changed() ([]byte, error) {
	st, err := os.Stat(l.path)
	if err != nil {
		return nil, fmt.Errorf("read local config: %w", err)
	}
	if st.Size() == l.size && st.ModTime().Equal(l.mtime) {
		return nil, nil
	}
	old := l.version
	doc, v, err := l.read()
	if err != nil || v == old {
		return nil, err
	}
	return doc, nil
}
