//go:build !linux

package source

import "errors"

// fileWatch is the kernel's notice of changes to the local file: Linux
// only; elsewhere the source looks at the file every LocalPoll.
type fileWatch struct {
	changes chan struct{}
}

func watchFile(string) (*fileWatch, error) {
	return nil, errors.New("no file change notices on this system")
}

func (w *fileWatch) close() {}
