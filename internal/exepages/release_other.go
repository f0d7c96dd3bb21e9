//go:build !linux

package exepages

// Release does nothing here: Linux only.
func Release(Mode) (Result, error) { return Result{}, nil }
