//go:build !linux

package exepages

import "errors"

// Binary is the executable's read-only mappings: Linux only.
type Binary struct{}

// Open says the pages cannot be given back here: Linux only.
func Open() (*Binary, error) { return nil, errors.New("exepages: Linux only") }

// Release does nothing here.
func (*Binary) Release() (Result, error) { return Result{}, nil }
