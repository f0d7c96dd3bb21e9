package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
)

// preflight checks a bbolt file's structure from its bytes, before bbolt
// maps it into memory. bbolt trusts its pages: a truncated file makes it
// fault past the end of the mapping, and a page that points back at itself
// makes it (and its own Check) recurse without end. Neither is an error
// one can recover from, so the tree is walked here first: every page
// inside the file and the high-water mark, referenced once, of a known
// type, with every element inside its page.
//
// The layout (bbolt file format 2, native byte order): a page is a 16-byte
// header (id u64, flags u16, count u16, overflow u32) followed by count
// elements of 16 bytes. The two meta pages (0 and 1) hold magic u32,
// version u32, page size u32, flags u32, root bucket (root u64, sequence
// u64), freelist u64, high-water page id u64, txid u64 and an FNV-64a
// checksum of the preceding meta bytes. A branch element is pos u32, ksize
// u32, child u64; a leaf element flags u32, pos u32, ksize u32, vsize u32,
// with pos counted from the element itself. A bucket's value is its root
// u64 and sequence u64, then, for root 0, an inline leaf page.
func preflight(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config cache: stat %s: %w", path, err)
	}
	if st.Size() == 0 {
		return nil // bbolt initialises an empty file
	}
	if st.Size() > maxCacheFile {
		return corruptError{fmt.Errorf("file is %d bytes, far more than a config cache holds", st.Size())}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config cache: read %s: %w", path, err)
	}
	if err := verifyFile(data); err != nil {
		return corruptError{err}
	}
	return nil
}

// maxCacheFile bounds config.db: two documents of at most 8 MiB, their
// signatures and bbolt's slack.
const maxCacheFile = 64 << 20

const (
	magic          = 0xED0CDAED
	headerSize     = 16
	elemSize       = 16
	metaSumSpan    = 56 // meta bytes covered by the checksum
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagFreelist   = 0x10
	flagBucket     = 0x01
	noFreelist     = ^uint64(0)
	maxTreeDepth   = 32
	bucketHdrBytes = 16
)

var ne = binary.NativeEndian

type meta struct {
	pageSize uint64
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

func verifyFile(data []byte) error {
	// bbolt runs on the valid meta page with the higher transaction id.
	m0, ok0 := readMeta(data, 0)
	off := uint64(os.Getpagesize())
	if ok0 {
		off = m0.pageSize
	}
	m1, ok1 := readMeta(data, off)
	var m meta
	switch {
	case ok0 && ok1 && m1.txid > m0.txid, !ok0 && ok1:
		m = m1
	case ok0:
		m = m0
	default:
		return errors.New("no valid bbolt meta page")
	}
	if m.pgid < 2 || m.pgid > uint64(len(data))/m.pageSize {
		return fmt.Errorf("file is %d bytes but its meta page needs %d pages of %d (truncated)", len(data), m.pgid, m.pageSize)
	}
	w := &walker{data: data, ps: m.pageSize, hwm: m.pgid, seen: map[uint64]bool{0: true, 1: true}}
	if m.freelist != noFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	return w.tree(m.root, 0)
}

func readMeta(data []byte, off uint64) (meta, bool) {
	start := off + headerSize
	if off > uint64(len(data)) || uint64(len(data))-start < metaSumSpan+8 || off > 1<<20 {
		return meta{}, false
	}
	b := data[start : start+metaSumSpan+8]
	if ne.Uint32(b[0:]) != magic || ne.Uint32(b[4:]) != 2 {
		return meta{}, false
	}
	h := fnv.New64a()
	h.Write(b[:metaSumSpan])
	if h.Sum64() != ne.Uint64(b[metaSumSpan:]) {
		return meta{}, false
	}
	m := meta{
		pageSize: uint64(ne.Uint32(b[8:])),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		pgid:     ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 {
		return meta{}, false
	}
	return m, true
}

type walker struct {
	data []byte
	ps   uint64
	hwm  uint64
	seen map[uint64]bool
}

// page returns page id with its overflow pages, once.
func (w *walker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d: outside the file's %d pages", id, w.hwm)
	}
	off := id * w.ps
	hdr := w.data[off : off+headerSize]
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d: header says it is page %d", id, got)
	}
	last := id + uint64(ne.Uint32(hdr[12:]))
	if last >= w.hwm {
		return nil, fmt.Errorf("page %d: overflows past the file's %d pages", id, w.hwm)
	}
	for i := id; i <= last; i++ {
		if w.seen[i] {
			return nil, fmt.Errorf("page %d: referenced twice", i)
		}
		w.seen[i] = true
	}
	return w.data[off : (last+1)*w.ps], nil
}

func (w *walker) freelist(id uint64) error {
	p, err := w.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if ne.Uint16(p[8:]) != flagFreelist {
		return fmt.Errorf("freelist: page %d is not a freelist page", id)
	}
	first, n := uint64(0), uint64(ne.Uint16(p[10:]))
	if n == 0xFFFF {
		first, n = 1, ne.Uint64(p[headerSize:])
	}
	if n > (uint64(len(p))-headerSize)/8-first {
		return fmt.Errorf("freelist: page %d claims %d entries", id, n)
	}
	for i := first; i < first+n; i++ {
		if f := ne.Uint64(p[headerSize+8*i:]); f < 2 || f >= w.hwm {
			return fmt.Errorf("freelist: free page %d outside the file's %d pages", f, w.hwm)
		}
	}
	return nil
}

// tree checks the bucket tree rooted at page id.
func (w *walker) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	p, err := w.page(id)
	if err != nil {
		return err
	}
	flags, count := ne.Uint16(p[8:]), uint64(ne.Uint16(p[10:]))
	if headerSize+count*elemSize > uint64(len(p)) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	switch flags {
	case flagLeaf:
		return w.leaf(id, p, count, depth)
	case flagBranch:
		if count == 0 {
			return fmt.Errorf("page %d: empty branch", id)
		}
		for i := range count {
			e := headerSize + i*elemSize
			pos, ksize := uint64(ne.Uint32(p[e:])), uint64(ne.Uint32(p[e+4:]))
			if e+pos+ksize > uint64(len(p)) {
				return fmt.Errorf("page %d: element %d outside the page", id, i)
			}
			if err := w.tree(ne.Uint64(p[e+8:]), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("page %d: not a branch or leaf page (flags %#x)", id, flags)
}

// leaf checks the elements of a leaf page (id 0: inline) and the buckets
// they hold.
func (w *walker) leaf(id uint64, p []byte, count uint64, depth int) error {
	for i := range count {
		e := headerSize + i*elemSize
		flags := ne.Uint32(p[e:])
		pos, ksize, vsize := uint64(ne.Uint32(p[e+4:])), uint64(ne.Uint32(p[e+8:])), uint64(ne.Uint32(p[e+12:]))
		if e+pos+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("page %d: element %d outside the page", id, i)
		}
		if flags&flagBucket == 0 {
			continue
		}
		v := p[e+pos+ksize : e+pos+ksize+vsize]
		if len(v) < bucketHdrBytes {
			return fmt.Errorf("page %d: element %d: bucket header too short", id, i)
		}
		if root := ne.Uint64(v); root != 0 {
			if err := w.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		in := v[bucketHdrBytes:]
		if len(in) < headerSize || ne.Uint16(in[8:]) != flagLeaf {
			return fmt.Errorf("page %d: element %d: inline bucket is not a leaf page", id, i)
		}
		n := uint64(ne.Uint16(in[10:]))
		if headerSize+n*elemSize > uint64(len(in)) {
			return fmt.Errorf("page %d: element %d: inline bucket's %d elements do not fit", id, i, n)
		}
		if depth+1 > maxTreeDepth {
			return fmt.Errorf("page %d: buckets nested deeper than %d", id, maxTreeDepth)
		}
		if err := w.leaf(0, in, n, depth+1); err != nil {
			return err
		}
	}
	return nil
}
