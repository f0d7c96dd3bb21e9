package appliance

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/internal/lograte"
)

const (
	// diskCheckEvery is how often the free space is measured; diskCheckFull
	// while writes are refused, so that listeners resume soon after room
	// is made.
	diskCheckEvery = 5 * time.Second
	diskCheckFull  = 500 * time.Millisecond
	// diskRoom is how much free space counts as room again after the disk
	// was full: enough for a few thousand messages.
	diskRoom = 1 << 20
	// Without gateway.disk_warn_bytes the warning threshold is a tenth of
	// the file system, at most diskWarnMax: an appliance's /perm can be
	// smaller than a fixed threshold (the Pi image's is under 100 MiB).
	diskWarnMax      = 128 << 20
	diskWarnFraction = 10
)

// disk watches the file system of the state dir, where the export spool
// writes every accepted message: its free space (metric, and degraded
// health below the warning threshold) and writes refused for lack of space
// (ENOSPC, EDQUOT), which are logged, rate-limited, and put health in
// degraded with the reason until there is room again. Listeners that
// stopped for it wait on room, not on a back-off.
type disk struct {
	dir        string
	configured uint64 // gateway.disk_warn_bytes; 0: automatic
	health     *health.Model
	log        *slog.Logger
	// statfs measures free bytes and the file system's size (a variable
	// for tests).
	statfs func(dir string) (free, size uint64, err error)

	fullLog, roomLog lograte.Limit

	isFull atomic.Bool // the fast path of stored
	mu     sync.Mutex
	free   uint64
	warn   uint64        // the threshold in force
	room   chan struct{} // closed while not full
	wake   chan struct{} // measure now (capacity 1)
}

func newDisk(dir string, warn int64, h *health.Model, log *slog.Logger) *disk {
	d := &disk{
		dir: dir, configured: uint64(max(warn, 0)), warn: uint64(max(warn, 0)), health: h, log: log, statfs: freeBytes,
		fullLog: lograte.Limit{Burst: 1, Window: time.Minute},
		roomLog: lograte.Limit{Burst: 1, Window: time.Minute},
		room:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	close(d.room)
	metrics.DiskWarn.Set(float64(d.warn))
	metrics.DiskFull.Set(0)
	return d
}

// warnFor is the warning threshold for a file system of size bytes.
func (d *disk) warnFor(size uint64) uint64 {
	if d.configured > 0 {
		return d.configured
	}
	return min(diskWarnMax, size/diskWarnFraction)
}

// noSpace reports whether err is a write refused for lack of space.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// refused records a write refused for lack of space: the disk is full
// until a write succeeds or a measurement finds room.
func (d *disk) refused(err error) {
	d.mu.Lock()
	if !d.isFull.Load() {
		d.isFull.Store(true)
		d.room = make(chan struct{})
		metrics.DiskFull.Set(1)
	}
	d.mu.Unlock()
	if ok, suppressed := d.fullLog.Allow(time.Now()); ok {
		d.log.Error("disk full: readings cannot be stored; make room in the state dir (pollers' readings are dropped and counted, listeners wait, HTTP ingest answers 507)",
			"state_dir", d.dir, "err", err, "suppressed", suppressed)
	}
	d.measure(false) // the next regular measurement may find room
	select {
	case d.wake <- struct{}{}: // check often from now on
	default:
	}
}

// stored records a write that succeeded.
func (d *disk) stored() {
	if d.isFull.Load() {
		d.setRoom("a write succeeded")
	}
}

// setRoom ends a full period.
func (d *disk) setRoom(why string) {
	d.mu.Lock()
	if !d.isFull.Load() {
		d.mu.Unlock()
		return
	}
	d.isFull.Store(false)
	close(d.room)
	free := d.free
	d.mu.Unlock()
	metrics.DiskFull.Set(0)
	d.report()
	if ok, suppressed := d.roomLog.Allow(time.Now()); ok {
		d.log.Info("disk has room again: storing readings resumes", "state_dir", d.dir, "free", health.Bytes(free), "because", why, "suppressed", suppressed)
	}
}

// measure reads the free space, updates the metric and health, and (with
// end) ends a full period when there is room.
func (d *disk) measure(end bool) {
	free, size, err := d.statfs(d.dir)
	if err != nil {
		d.log.Debug("measure free space of the state dir", "err", err)
		return
	}
	warn := d.warnFor(size)
	metrics.DiskFree.Set(float64(free))
	metrics.DiskWarn.Set(float64(warn))
	d.mu.Lock()
	d.free, d.warn = free, warn
	d.mu.Unlock()
	if end && d.isFull.Load() && free >= diskRoom {
		d.setRoom("space was freed")
		return
	}
	d.report()
}

func (d *disk) report() {
	d.mu.Lock()
	free, warn := d.free, d.warn
	d.mu.Unlock()
	d.health.Disk(d.dir, free, warn, d.isFull.Load())
}

// run measures until ctx ends: every diskCheckEvery, and every
// diskCheckFull while the disk is full.
func (d *disk) run(ctx context.Context) {
	for {
		d.measure(true)
		every := diskCheckEvery
		if d.isFull.Load() {
			every = diskCheckFull
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// waitRoom returns once the disk is not full, or ctx.Err().
func (d *disk) waitRoom(ctx context.Context) error {
	d.mu.Lock()
	room := d.room
	d.mu.Unlock()
	select {
	case <-room:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freeBytes is the space osgate can write to dir's file system. Root may
// write into the blocks ext4 reserves for it, so those count when osgate
// runs as root (on the appliance); as its own user (the systemd unit, the
// container) only the blocks df shows as available count.
func freeBytes(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	blocks := st.Bavail
	if os.Geteuid() == 0 {
		blocks = st.Bfree
	}
	return blocks * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
