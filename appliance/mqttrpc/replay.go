package mqttrpc

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
)

// StateFile is the name, under the state dir, of the journal of accepted
// request ids. One line per accepted request,
//
//	<expiry, Unix seconds> <request id> <first 16 bytes of the payload's SHA-256, hex>
//
// appended and synced before the request runs, so a restart (or a power
// cut) does not forget an id before it expires. At start, and whenever
// expired lines make up more than half of it, the file is rewritten with
// the live ids only.
const StateFile = "rpc-mqtt-ids"

// compactSlack is how many dead lines the journal may hold beyond the live
// ones before it is rewritten.
const compactSlack = 1024

// verdict is what the id memory says of a request.
type verdict int

const (
	fresh     verdict = iota // new id: recorded, run the request
	duplicate                // same id, same payload: a second delivery; drop it
	replayed                 // same id, other payload: refuse it
	full                     // too many live ids: refuse, retry later
)

// seen is one remembered id.
type seen struct {
	exp int64 // Unix seconds; the id is forgotten after this
	sum [16]byte
}

// idMemory remembers accepted request ids until they expire, in memory and
// in the journal file. It holds at most max ids.
type idMemory struct {
	path string
	max  int

	mu    sync.Mutex
	live  map[string]seen
	f     *os.File
	lines int // lines in the journal file
}

// openIDs reads the journal at path (a missing file is an empty one),
// keeps the ids that have not expired at now and rewrites the file with
// them. It returns how many lines were unreadable (a torn last line after
// a power cut is one).
func openIDs(path string, max int, now time.Time) (*idMemory, int, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, 0, fmt.Errorf("read request id journal %s: %w", path, err)
	}
	live, bad := parseJournal(data, now.Unix())
	m := &idMemory{path: path, max: max, live: live}
	if err := m.rewrite(); err != nil {
		return nil, bad, err
	}
	return m, bad, nil
}

// parseJournal reads journal lines, keeping those whose expiry is after
// now; bad counts the lines that are not journal lines.
func parseJournal(data []byte, now int64) (live map[string]seen, bad int) {
	live = map[string]seen{}
	for len(data) > 0 {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		data = rest
		if !complete {
			bad++ // torn: the write of this line never finished
			break
		}
		id, s, ok := parseLine(line)
		if !ok {
			bad++
			continue
		}
		if s.exp > now {
			live[id] = s
		}
	}
	return live, bad
}

func parseLine(line []byte) (string, seen, bool) {
	var s seen
	f := bytes.Split(line, []byte{' '})
	if len(f) != 3 {
		return "", s, false
	}
	exp, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || exp <= 0 {
		return "", s, false
	}
	id := string(f[1])
	if !validID(id) || len(f[2]) != hex.EncodedLen(len(s.sum)) {
		return "", s, false
	}
	if _, err := hex.Decode(s.sum[:], f[2]); err != nil {
		return "", s, false
	}
	s.exp = exp
	return id, s, true
}

func formatLine(id string, s seen) string {
	return strconv.FormatInt(s.exp, 10) + " " + id + " " + hex.EncodeToString(s.sum[:]) + "\n"
}

// check looks id up and, when it is new, records it until exp. A journal
// write that fails still leaves the id remembered in memory (so it stays
// refused in this run) and returns the error: the caller refuses the
// request, since a restart would forget the id.
func (m *idMemory) check(id string, sum [16]byte, exp, now time.Time) (verdict, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.live[id]; ok && s.exp > now.Unix() {
		if s.sum == sum {
			return duplicate, nil
		}
		return replayed, nil
	}
	if len(m.live) >= m.max {
		m.prune(now)
		if len(m.live) >= m.max {
			return full, nil
		}
	}
	// Round up: the id is kept at least until the request expires.
	s := seen{exp: exp.Add(time.Second - 1).Unix(), sum: sum}
	m.live[id] = s
	if err := m.append(formatLine(id, s)); err != nil {
		return fresh, err
	}
	if m.lines > 2*len(m.live)+compactSlack {
		m.prune(now)
		if err := m.rewrite(); err != nil {
			return fresh, err
		}
	}
	return fresh, nil
}

func (m *idMemory) prune(now time.Time) {
	for id, s := range m.live {
		if s.exp <= now.Unix() {
			delete(m.live, id)
		}
	}
}

func (m *idMemory) append(line string) error {
	if m.f == nil {
		return fmt.Errorf("request id journal %s is not open", m.path)
	}
	if _, err := m.f.WriteString(line); err != nil {
		return fmt.Errorf("append to request id journal %s: %w", m.path, err)
	}
	m.lines++
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("sync request id journal %s: %w", m.path, err)
	}
	return nil
}

// rewrite replaces the journal with the live ids (write a temporary file,
// sync, rename, sync the directory) and opens it for appending.
func (m *idMemory) rewrite() error {
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
	var b bytes.Buffer
	for id, s := range m.live {
		b.WriteString(formatLine(id, s))
	}
	if err := atomicfile.Write(m.path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("rewrite request id journal: %w", err)
	}
	f, err := os.OpenFile(m.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open request id journal: %w", err)
	}
	m.f, m.lines = f, len(m.live)
	return nil
}

func (m *idMemory) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	if err != nil {
		return fmt.Errorf("close request id journal %s: %w", m.path, err)
	}
	return nil
}
