package source

import (
	"time"

	"github.com/osgate/osgate/internal/backoff"
)

// nextDelay is how long to wait before the next pull: after a success the
// interval less up to a tenth; after failures a back-off from a sixteenth
// of the interval (1s to 30s), never beyond the interval (see
// backoff.Periodic).
func nextDelay(interval time.Duration, failures int) time.Duration {
	return backoff.Periodic(interval, min(max(interval/16, time.Second), 30*time.Second), failures)
}
