package broker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/config"
)

// How osgate knows what the broker has saved (see export.Broker): the
// export sink notes how far the broker acknowledged, and Persist waits for
// the next save of mosquitto.db, asking for one with SIGUSR1 when told to
// (Mosquitto 2.0 saves on SIGUSR1 in its main loop, as it does on its
// autosave timer). Mosquitto handles one thing at a time, so a save that
// replaces the file after Persist looked at it began after every message
// acknowledged before, and holds them. Mosquitto writes mosquitto.db.new,
// fsyncs it and renames it over mosquitto.db; Persist sees the file's
// inode change, fsyncs the file and the directory (so the rename survives
// a power cut), reads it back whole, and only then reports the save.
//
// Persist looks at the file when the kernel says a file was renamed onto
// its name (inotify, one watch of the state directory for as long as Run
// runs), and once a second anyway in case a notice was lost. Where there
// are no notices it looks 10 ms after the call, then at doubling
// intervals up to 160 ms.

const (
	dbIDName          = "mosquitto.db.id"      // in confDir: the database's identity
	corruptKeep       = 3                      // damaged databases kept for inspection
	ownSaveWait       = time.Second            // Persist without now: wait for an autosave
	askedSaveWait     = 30 * time.Second       // Persist with now: wait for the save
	saveLook          = time.Second            // a look for a save without a notice of one
	savePoll          = 10 * time.Millisecond  // without notices: the first look for a save, doubling up to
	maxSavePoll       = 160 * time.Millisecond // this
	summaryEvery      = 10                     // read what a save holds at most every 10x the last read's time
	bridgeLocalPrefix = "local."               // Mosquitto's prefix of a bridge's local client id
)

// bridgeClientID is the bridge's client id on the cloud broker.
func bridgeClientID(b *config.Bridge, gatewayID string) string {
	id := b.ClientID
	if id == "" {
		id = defaultClientID
	}
	return strings.ReplaceAll(id, "{gateway}", gatewayID)
}

func (b *Broker) dbPath() string { return filepath.Join(b.dir, persistenceName) }

// prepareDB runs before every start of mosquitto: a damaged mosquitto.db
// (one Mosquitto would refuse, or would read as less than it is) is moved
// aside so that the broker starts, with an empty state. The database's
// identity changes whenever the broker starts without the state it saved
// before, which tells the export sink to send again what that state held.
func (b *Broker) prepareDB() {
	path := b.dbPath()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.newDBID("no saved state")
		return
	case err != nil:
		b.quarantine(fmt.Errorf("cannot read it: %w", err))
		return
	}
	if err := checkDB(data); err != nil {
		b.quarantine(err)
		return
	}
	b.loadDBID()
}

// quarantine moves a damaged mosquitto.db aside and starts a new database
// identity.
func (b *Broker) quarantine(why error) {
	path := b.dbPath()
	size := int64(-1)
	if st, err := os.Stat(path); err == nil {
		size = st.Size()
	}
	moved := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(path, moved); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// It cannot be moved: remove it, or the broker never starts.
		b.log.Error("broker: cannot move a damaged mosquitto.db aside; removing it", "path", path, "error", err)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.log.Error("broker: cannot remove the damaged mosquitto.db; the broker will not start until it is removed",
				"path", path, "error", err)
		}
		moved = ""
	}
	syncDir(b.dir)
	metrics.BrokerDBDamaged.Inc()
	b.log.Error("broker: mosquitto.db was damaged: moved aside, the broker starts with an empty state; "+
		"osgate sends again what the lost state may have held for the cloud (see appliance/export)",
		"path", path, "size", size, "moved_to", moved, "damage", why.Error())
	b.pruneCorrupt()
	b.newDBID("the saved state was damaged")
}

// pruneCorrupt keeps the newest corruptKeep damaged databases.
func (b *Broker) pruneCorrupt() {
	old, _ := filepath.Glob(b.dbPath() + ".corrupt-*")
	slices.Sort(old)
	for len(old) > corruptKeep {
		_ = os.Remove(old[0])
		old = old[1:]
	}
}

// loadDBID reads the database's identity, making one if there is none
// (a state dir from before osgate kept one).
func (b *Broker) loadDBID() {
	raw, err := os.ReadFile(filepath.Join(b.dir, dbIDName))
	if err == nil {
		if id, err := hex.DecodeString(strings.TrimSpace(string(raw))); err == nil && len(id) == 8 {
			if v := binary.BigEndian.Uint64(id); v != 0 {
				b.setDBID(v)
				return
			}
		}
	}
	b.newDBID("no identity recorded")
}

// newDBID records a new database identity, durably: a power cut must not
// bring back the old one.
func (b *Broker) newDBID(why string) {
	var raw [8]byte
	var id uint64
	for id == 0 {
		_, _ = rand.Read(raw[:])
		id = binary.BigEndian.Uint64(raw[:])
	}
	if err := os.MkdirAll(b.dir, 0o700); err == nil {
		path := filepath.Join(b.dir, dbIDName)
		tmp := path + ".tmp"
		if f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			_, werr := f.WriteString(hex.EncodeToString(raw[:]) + "\n")
			serr := f.Sync()
			f.Close()
			if werr == nil && serr == nil && os.Rename(tmp, path) == nil {
				syncDir(b.dir)
			}
		}
	}
	b.log.Debug("broker: new database identity", "why", why)
	b.setDBID(id)
}

func (b *Broker) setDBID(id uint64) {
	b.mu.Lock()
	b.dbID = id
	b.mu.Unlock()
}

// databaseRefused reports whether mosquitto's output says it could not
// read its persistence file.
func databaseRefused(output string) bool {
	for _, s := range []string{"Couldn't open database", "Unable to restore persistent database", "Unsupported persistent database format"} {
		if strings.Contains(output, s) {
			return true
		}
	}
	return false
}

// Generation names the mosquitto process that runs now, or ran last; it
// grows with every start (export.Broker).
func (b *Broker) Generation() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen
}

// NextStart returns a channel closed when the next mosquitto process
// listens (export.Broker).
func (b *Broker) NextStart() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nextStart
}

// PID is the running mosquitto's process id, or 0.
func (b *Broker) PID() int { return b.pid() }

// Persist waits for a save of mosquitto.db by process gen that began after
// the call, makes it durable and reads it back (export.Broker). With now
// it sends SIGUSR1 (save now, again every second until one comes) and
// waits up to 30 s; without, it waits up
// to a second for a save Mosquitto makes on its own (autosave_interval)
// and returns export.ErrNotSaved if none came.
func (b *Broker) Persist(ctx context.Context, gen uint64, clientID string, now bool) (export.Saved, error) {
	b.mu.Lock()
	p, running, w := b.proc, b.gen, b.saves
	b.mu.Unlock()
	if p == nil || running != gen {
		return export.Saved{}, export.ErrGone
	}
	path := b.dbPath()
	before, _ := os.Stat(path)
	wait := ownSaveWait
	var asked time.Time
	if now {
		if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			return export.Saved{}, export.ErrGone
		}
		wait, asked = askedSaveWait, time.Now()
	}
	// A save asked for comes within milliseconds; an autosave whenever
	// Mosquitto's timer says. The kernel's notice of the rename onto
	// mosquitto.db says when to look, and the look decides; without
	// notices the file is looked at more and more rarely, which finds the
	// first soon and waits for the other without waking the gateway a
	// hundred times a second.
	var notice <-chan struct{}
	every, most := savePoll, maxSavePoll
	if w != nil {
		notice = w.C()
		every, most = saveLook, saveLook
	}
	deadline := time.Now().Add(wait)
	timer := time.NewTimer(min(every, wait))
	defer timer.Stop()
	for !b.replaced(path, before) {
		if !time.Now().Before(deadline) {
			if !now {
				return export.Saved{}, export.ErrNotSaved
			}
			return export.Saved{}, fmt.Errorf("broker: mosquitto did not save %s within %s of SIGUSR1 (disk full? see its log)", path, wait)
		}
		select {
		case <-p.done:
			return export.Saved{}, export.ErrGone
		case <-ctx.Done():
			return export.Saved{}, ctx.Err()
		case <-notice:
		case <-timer.C:
			every = min(2*every, most)
			timer.Reset(min(every, time.Until(deadline)))
			if now && time.Since(asked) >= saveLook {
				// A SIGUSR1 that arrives while Mosquitto finishes the
				// save before can go unanswered (seen under load, right
				// after a save): ask again; a save more costs only its
				// write.
				_ = p.cmd.Process.Signal(syscall.SIGUSR1)
				asked = time.Now()
			}
		}
	}
	data, err := readSynced(path)
	if err != nil {
		return export.Saved{}, fmt.Errorf("broker: read back the saved %s: %w", path, err)
	}
	syncDir(b.dir)
	bridgeID := ""
	if b.cfg.Bridge != nil {
		bridgeID = bridgeLocalPrefix + bridgeClientID(b.cfg.Bridge, b.gatewayID)
	}
	// Reading what the save holds costs about as much as Mosquitto's
	// writing it; with a large backlog it is done only now and then (at
	// most a tenth of the time), the structure is checked every time.
	skim := bridgeID != "" && time.Since(b.summaryAt) < summaryEvery*b.summaryCost
	if skim {
		bridgeID, clientID = "", ""
	}
	began := time.Now()
	sum, err := readDB(data, clientID, bridgeID)
	if err != nil {
		// Mosquitto renames its file in place even when part of the
		// write failed (a full disk): not a save to rely on.
		return export.Saved{}, fmt.Errorf("broker: the saved %s is damaged (%v); the disk may be full", path, err)
	}
	if bridgeID != "" {
		b.summaryAt, b.summaryCost = time.Now(), time.Since(began)
	}
	b.mu.Lock()
	still, id := b.gen == gen && b.proc == p, b.dbID
	b.mu.Unlock()
	if !still {
		return export.Saved{}, export.ErrGone
	}
	saved := export.Saved{DB: id, Backlog: len(sum.held), Skimmed: skim}
	if bridgeID != "" {
		saved.Held = sum.holds
	}
	return saved, nil
}

// replaced reports whether the file at path is another file than before
// (nil: there was none). Mosquitto replaces mosquitto.db by a rename, so
// every save makes it another file (inode), even one of the same size and
// time.
func (b *Broker) replaced(path string, before os.FileInfo) bool {
	b.looks.Add(1)
	now, err := os.Stat(path)
	if err != nil {
		return false
	}
	return before == nil || !os.SameFile(before, now)
}

// readSynced fsyncs the file at path and returns its contents.
func readSynced(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("fsync: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, err
	}
	return data, nil
}

// syncDir fsyncs a directory so a rename in it survives a power loss.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
