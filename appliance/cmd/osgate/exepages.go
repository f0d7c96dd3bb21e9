package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/osgate/osgate/internal/exepages"
)

// When `osgate run` gives back the pages of its binary that it no longer
// uses (internal/exepages). Once its start is over it splits the binary's
// mappings into a mapping a page, so that what the running gateway uses
// again is mapped alone, without the neighbours the kernel would map
// with it, and unmaps them all. Then now and then, since a configuration
// applied, an update checked or a rare RPC answered maps code that then
// stays resident, it unmaps them again: what is in use comes back at a
// minor fault a page, from the page cache.
const (
	exePagesFirst = 5 * time.Second
	exePagesEvery = 10 * time.Minute
)

// releaseExePages gives the pages back first after start, then every
// every, until ctx ends. A system where it cannot work (no /proc, an
// unusual mapping) is said once at debug level and left alone; where the
// mappings cannot be split, the pages are still given back.
func releaseExePages(ctx context.Context, log *slog.Logger, first, every time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	var bin *exepages.Binary
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if bin == nil {
			var err error
			if bin, err = exepages.Open(); err != nil {
				log.Debug("binary pages not given back", "err", err)
				return
			}
		}
		r, err := bin.Release()
		if r.SplitErr != nil {
			log.Debug("binary mappings not split", "err", r.SplitErr)
		}
		if err != nil {
			log.Debug("binary pages not given back", "err", err)
			return
		}
		log.Debug("binary pages given back", "split", r.Split,
			"resident_before_bytes", r.Before, "resident_after_bytes", r.After)
		t.Reset(every)
	}
}
