//go:build testhook

package all

// The test hook connector (drivers/testhook), only in binaries built with
// the tag testhook: make test and the amd64 VM test image.
import _ "github.com/osgate/osgate/drivers/testhook"
