package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/osgate/osgate/internal/exepages"
)

// When `osgate run` gives back the pages of its binary that it no longer
// uses (internal/exepages). Once its start is over they are paged out:
// they leave the page cache, and the code the running gateway uses is read
// again from the file, page by page (at 10 Hz Modbus here, a few hundred
// reads of a page in the next seconds). Then now and then, since a
// configuration applied, an update checked or a rare RPC answered maps
// code that then stays resident, they are only unmapped: what is in use
// is mapped again at a minor fault each, without reading the file again,
// so no poll waits for the disk, and what is cached is only what was read
// since the page-out.
const (
	exePagesFirst = 5 * time.Second
	exePagesEvery = 10 * time.Minute
)

// releaseExePages pages the pages out first after start, then unmaps
// them every every, until ctx ends. A system where it cannot work (no
// /proc, an unusual mapping) is said once at debug level and left alone.
func releaseExePages(ctx context.Context, log *slog.Logger, first, every time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	mode := exepages.PageOut
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := exepages.Release(mode)
		if err != nil {
			log.Debug("binary pages not given back", "err", err)
			return
		}
		log.Debug("binary pages given back", "paged_out", r.PagedOut,
			"resident_before_bytes", r.Before, "resident_after_bytes", r.After)
		mode = exepages.Unmap
		t.Reset(every)
	}
}
