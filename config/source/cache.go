package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The cache file (stateDir/config.db) holds, in bucket "config", the last
// good document ("current") and the one before it ("previous"), each a JSON
// entry; and in bucket "bad" the versions that were rolled back. Every
// change is one bbolt transaction.
var (
	bucketConfig = []byte("config")
	bucketBad    = []byte("bad")
	keyCurrent   = []byte("current")
	keyPrevious  = []byte("previous")
)

// entry is one cached document with what is needed to ask the fleet
// server whether it is still current.
type entry struct {
	Doc          []byte    `json:"doc"`
	Sig          []byte    `json:"sig,omitempty"`
	Version      string    `json:"version"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	FetchedAt    time.Time `json:"fetched_at"`
}

// BadVersion is a version that was rolled back and is not delivered again.
type BadVersion struct {
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
}

type cache struct {
	db *bolt.DB
}

// versionOf is a document's version: the hex SHA-256 of its bytes.
func versionOf(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// openCache opens (or creates) the cache at path. A file that is not a
// sound cache (bbolt refuses it, it is truncated, its pages or entries are
// inconsistent) is renamed to path.corrupt-<time> and a fresh one is
// started; moved is then the new name.
func openCache(path string, log *slog.Logger) (c *cache, moved string, err error) {
	c, err = tryOpen(path)
	if err == nil {
		return c, "", nil
	}
	var ce corruptError
	if !errors.As(err, &ce) {
		return nil, "", err
	}
	moved = fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000Z"))
	if rerr := os.Rename(path, moved); rerr != nil {
		return nil, "", fmt.Errorf("config cache: move aside corrupt %s (%v): %w", path, err, rerr)
	}
	log.Warn("config cache was corrupt: moved aside, starting a fresh one", "path", path, "moved_to", moved, "err", err)
	c, err = tryOpen(path)
	if err != nil {
		return nil, moved, fmt.Errorf("config cache: fresh %s after moving the corrupt one aside: %w", path, err)
	}
	return c, moved, nil
}

// corruptError says the file is damaged (as opposed to unreadable because
// of permissions or a lock held by another process).
type corruptError struct{ err error }

func (e corruptError) Error() string { return "corrupt: " + e.err.Error() }
func (e corruptError) Unwrap() error { return e.err }

func tryOpen(path string) (c *cache, err error) {
	if err := preflight(path); err != nil {
		return nil, err
	}
	// A damaged file can make bbolt touch memory past the end of the file
	// (a fault, not an error) or panic; both are corruption, caught here
	// while every page we rely on is read once.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			// db is left open: after a panic its locks may be held, and
			// Close could wait for ever. The fresh file is another inode.
			c, err = nil, corruptError{fmt.Errorf("bbolt panicked: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("config cache: open %s: %w", path, err)
		}
		return nil, corruptError{err}
	}
	if err := db.View(walk); err != nil {
		db.Close()
		return nil, corruptError{err}
	}
	if err := check(db); err != nil {
		db.Close()
		return nil, corruptError{err}
	}
	return &cache{db: db}, nil
}

// walk reads every key and value of every bucket, so that a damaged page
// faults here, under SetPanicOnFault, rather than later.
func walk(tx *bolt.Tx) error {
	h := crc32.NewIEEE()
	var visit func(b *bolt.Bucket, depth int) error
	visit = func(b *bolt.Bucket, depth int) error {
		if depth > 8 {
			return errors.New("buckets nested too deep")
		}
		return b.ForEach(func(k, v []byte) error {
			h.Write(k)
			if v != nil {
				h.Write(v)
				return nil
			}
			sub := b.Bucket(k)
			if sub == nil {
				return fmt.Errorf("key %q has neither value nor bucket", k)
			}
			return visit(sub, depth+1)
		})
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		h.Write(name)
		return visit(b, 0)
	})
}

// check runs bbolt's consistency check, makes the buckets and decodes
// every entry.
func check(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: Check's goroutine sends every error
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
		for _, name := range [][]byte{bucketConfig, bucketBad} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		for _, k := range [][]byte{keyCurrent, keyPrevious} {
			if _, err := getEntry(tx, k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketBad).ForEach(func(k, v []byte) error {
			var b BadVersion
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("bad version %q: %w", k, err)
			}
			return nil
		})
	})
}

func getEntry(tx *bolt.Tx, key []byte) (*entry, error) {
	v := tx.Bucket(bucketConfig).Get(key)
	if v == nil {
		return nil, nil
	}
	e := &entry{}
	if err := json.Unmarshal(v, e); err != nil {
		return nil, fmt.Errorf("entry %q: %w", key, err)
	}
	if e.Version != versionOf(e.Doc) {
		return nil, fmt.Errorf("entry %q: version %.12s does not match its document", key, e.Version)
	}
	return e, nil
}

func putEntry(tx *bolt.Tx, key []byte, e *entry) error {
	if e == nil {
		return tx.Bucket(bucketConfig).Delete(key)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketConfig).Put(key, v)
}

// current is the last good document, or nil.
func (c *cache) current() (e *entry, err error) {
	err = c.db.View(func(tx *bolt.Tx) error {
		e, err = getEntry(tx, keyCurrent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("config cache: read: %w", err)
	}
	return e, nil
}

// store makes e the current document; the one it replaces becomes the
// previous. Storing the current version again only refreshes its
// validators and fetch time.
func (c *cache) store(e entry) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		cur, err := getEntry(tx, keyCurrent)
		if err != nil {
			return err
		}
		if cur != nil && cur.Version != e.Version {
			if err := putEntry(tx, keyPrevious, cur); err != nil {
				return err
			}
		}
		return putEntry(tx, keyCurrent, &e)
	})
	if err != nil {
		return fmt.Errorf("config cache: store version %.12s: %w", e.Version, err)
	}
	return nil
}

// markBad records version as bad. If it is the current document, the
// previous one becomes current again (or the cache is left empty).
func (c *cache) markBad(b BadVersion) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		v, err := json.Marshal(b)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketBad).Put([]byte(b.Version), v); err != nil {
			return err
		}
		cur, err := getEntry(tx, keyCurrent)
		if err != nil || cur == nil || cur.Version != b.Version {
			return err
		}
		prev, err := getEntry(tx, keyPrevious)
		if err != nil {
			return err
		}
		if err := putEntry(tx, keyCurrent, prev); err != nil {
			return err
		}
		return putEntry(tx, keyPrevious, nil)
	})
	if err != nil {
		return fmt.Errorf("config cache: mark version %.12s bad: %w", b.Version, err)
	}
	return nil
}

// bad lists the bad versions, oldest first.
func (c *cache) bad() ([]BadVersion, error) {
	var out []BadVersion
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBad).ForEach(func(k, v []byte) error {
			var b BadVersion
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("bad version %q: %w", k, err)
			}
			out = append(out, b)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("config cache: read bad versions: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

func (c *cache) close() error { return c.db.Close() }
