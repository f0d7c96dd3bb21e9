package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/osgate/osgate/internal/exepages"
)

// When `osgate run` gives back the pages of its binary that it no longer
// uses (internal/exepages): once its start is over, and then now and
// then, since a configuration applied, an update checked or a rare RPC
// answered maps code that then stays resident. Each release costs a
// millisecond or two of minor faults while the code in use is mapped
// again.
const (
	exePagesFirst = 5 * time.Second
	exePagesEvery = 10 * time.Minute
)

// releaseExePages gives the pages back first after start and then every
// every, until ctx ends. A system where it cannot work (no
// /proc, an unusual mapping) is said once at debug level and left alone.
func releaseExePages(ctx context.Context, log *slog.Logger, first, every time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := exepages.Release()
		if err != nil {
			log.Debug("binary pages not given back", "err", err)
			return
		}
		log.Debug("binary pages given back", "resident_before_bytes", r.Before, "resident_after_bytes", r.After)
		t.Reset(every)
	}
}
