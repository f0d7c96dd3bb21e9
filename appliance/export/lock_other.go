//go:build !unix

package export

import (
	"os"
	"path/filepath"
)

// lockDir only creates dir/lock where flock(2) does not exist.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
}
