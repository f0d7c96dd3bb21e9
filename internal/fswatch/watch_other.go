//go:build !linux

package fswatch

import "errors"

// Watch is the kernel's notice of changes to a file: Linux only; elsewhere
// File returns an error and the caller looks at the file on a timer.
type Watch struct {
	changes chan struct{}
}

// File returns an error: no change notices on this system.
func File(string) (*Watch, error) {
	return nil, errors.New("no file change notices on this system")
}

// C never delivers.
func (w *Watch) C() <-chan struct{} { return w.changes }

// Close does nothing.
func (w *Watch) Close() error { return nil }
