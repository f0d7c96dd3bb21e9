package zwave

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/osgate/osgate/internal/atomicfile"
)

// The connector keeps two files in <state dir>/zwave/<connector>/ (mode
// 0700): keys.json, the network keys (0600, made on first use), and
// nodes-<home id>.json, what it learned about each node of that network
// (0600): the security classes it granted, the interview, the wake-up
// interval. Both are small and written rarely (inclusion, commissioning).

const (
	keysFile = "keys.json"
	dirMode  = 0o700
	fileMode = 0o600
)

// netKeys are the four network keys of a Z-Wave network.
type netKeys struct {
	S0       [16]byte
	S2Unauth [16]byte
	S2Auth   [16]byte
	S2AC     [16]byte
}

func (k *netKeys) of(c secClass) []byte {
	switch c {
	case secS0:
		return k.S0[:]
	case secS2Unauth:
		return k.S2Unauth[:]
	case secS2Auth:
		return k.S2Auth[:]
	case secS2AC:
		return k.S2AC[:]
	}
	return nil
}

// KeysExport is keys.json and the answer of the "keys" command: each key
// as 32 hex digits, in the form Z-Wave JS and most controllers import.
type KeysExport struct {
	S0       string `json:"s0"`
	S2Unauth string `json:"s2_unauthenticated"`
	S2Auth   string `json:"s2_authenticated"`
	S2AC     string `json:"s2_access_control"`
}

func (k *netKeys) export() KeysExport {
	return KeysExport{S0: hex.EncodeToString(k.S0[:]), S2Unauth: hex.EncodeToString(k.S2Unauth[:]),
		S2Auth: hex.EncodeToString(k.S2Auth[:]), S2AC: hex.EncodeToString(k.S2AC[:])}
}

func parseKeys(b []byte) (*netKeys, error) {
	var e KeysExport
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("not the JSON of four keys: %w", err)
	}
	var k netKeys
	seen := map[[16]byte]string{}
	for _, f := range []struct {
		name string
		hex  string
		dst  *[16]byte
	}{{"s0", e.S0, &k.S0}, {"s2_unauthenticated", e.S2Unauth, &k.S2Unauth}, {"s2_authenticated", e.S2Auth, &k.S2Auth}, {"s2_access_control", e.S2AC, &k.S2AC}} {
		b, err := hex.DecodeString(f.hex)
		if err != nil || len(b) != 16 {
			// The value is a key: never put it into the error.
			return nil, fmt.Errorf("%s is not 32 hex digits", f.name)
		}
		copy(f.dst[:], b)
		if other, dup := seen[*f.dst]; dup {
			return nil, fmt.Errorf("%s and %s are the same key; every class needs its own", other, f.name)
		}
		seen[*f.dst] = f.name
	}
	return &k, nil
}

// nodeRecord is what the connector remembers about one node.
type nodeRecord struct {
	// Security are the classes the node was granted, highest first; empty
	// for a node included without security.
	Security []string `json:"security,omitempty"`
	// SecureCCs are the command classes the node supports only securely
	// (its S2/S0 Commands Supported Report).
	SecureCCs []int `json:"secure_command_classes,omitempty"`
	// SecurityError says why a secure inclusion failed.
	SecurityError string `json:"security_error,omitempty"`
	// DSK is the node's S2 device-specific key (its label).
	DSK string `json:"dsk,omitempty"`
	// Interview is what the node said about itself.
	Interview *Interview `json:"interview,omitempty"`
	// Name and Location come from the node's SmartStart provisioning entry.
	Name     string `json:"name,omitempty"`
	Location string `json:"location,omitempty"`
	// WakeUpSeconds is the node's wake-up interval (0: unknown).
	WakeUpSeconds int `json:"wake_up_interval_s,omitempty"`
	// Updated is when the record last changed.
	Updated time.Time `json:"updated"`
}

// classes returns the granted classes, highest first.
func (r nodeRecord) classes() []secClass {
	var out []secClass
	for _, n := range r.Security {
		if c, ok := parseSecClass(n); ok && c != secNone {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}

func (r nodeRecord) highest() secClass {
	if cs := r.classes(); len(cs) > 0 {
		return cs[0]
	}
	return secNone
}

func (r nodeRecord) secureCC(cc byte) bool {
	for _, x := range r.SecureCCs {
		if x == int(cc) {
			return true
		}
	}
	return false
}

type nodesFile struct {
	HomeID string                 `json:"home_id"`
	Nodes  map[string]*nodeRecord `json:"nodes"`
}

// store is the connector's state on disk.
type store struct {
	dir string // "" when the gateway has no state dir: nothing is kept
	log *slog.Logger

	mu      sync.Mutex
	keys    *netKeys
	home    uint32
	nodes   map[byte]*nodeRecord
	version int // of nodes, counted by every change

	// wmu orders the writes of nodes-*.json, done outside mu so that the
	// reader goroutine, which reads records, never waits for the disk.
	wmu     sync.Mutex
	written int // the version on disk
}

func newStore(stateDir, connector string, log *slog.Logger) *store {
	s := &store{log: log, nodes: map[byte]*nodeRecord{}}
	if stateDir != "" {
		s.dir = filepath.Join(stateDir, "zwave", connector)
	}
	return s
}

var errNoStateDir = errors.New("zwave: the gateway has no state dir, so network keys cannot be kept: set gateway.state_dir")

// loadKeys returns the network keys, reading keys.json; with create, keys
// are made (from crypto/rand) and saved when there are none. nil, nil:
// no keys yet and create is false.
func (s *store) loadKeys(create bool) (*netKeys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil {
		return s.keys, nil
	}
	if s.dir == "" {
		if !create {
			return nil, nil
		}
		return nil, errNoStateDir
	}
	path := filepath.Join(s.dir, keysFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, perr := parseKeys(b)
		if perr != nil {
			return nil, fmt.Errorf("zwave: network keys file %s is damaged (%v): restore it from a backup (the zwave.keys export); nodes included securely cannot be reached without it", path, perr)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			s.log.Warn("zwave: network keys file was readable by others; made it 0600", "file", path, "mode", fi.Mode().Perm().String())
			if err := os.Chmod(path, fileMode); err != nil {
				return nil, fmt.Errorf("zwave: restrict %s to its owner: %w", path, err)
			}
		}
		s.keys = k
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("zwave: read network keys: %w", err)
	case !create:
		return nil, nil
	}
	var k netKeys
	for _, dst := range []*[16]byte{&k.S0, &k.S2Unauth, &k.S2Auth, &k.S2AC} {
		rand.Read(dst[:])
	}
	out, _ := json.MarshalIndent(k.export(), "", "  ")
	if err := writeFileAtomic(s.dir, keysFile, out); err != nil {
		return nil, fmt.Errorf("zwave: save new network keys: %w", err)
	}
	s.log.Info("zwave: made new network keys (S0 and S2); back them up with zwave.keys (admin key)", "file", path)
	s.keys = &k
	return &k, nil
}

// useNetwork loads the node records of home id (once per network).
func (s *store) useNetwork(home uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.home == home && s.nodes != nil {
		return nil
	}
	s.home, s.nodes = home, map[byte]*nodeRecord{}
	if s.dir == "" {
		return nil
	}
	path := filepath.Join(s.dir, s.nodesName())
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("zwave: read node records: %w", err)
	}
	var f nodesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("zwave: node records %s are damaged (%v): move the file away to start over (nodes included securely must then be included again)", path, err)
	}
	for id, r := range f.Nodes {
		n, err := strconv.Atoi(id)
		if err != nil || n < 1 || n > 232 || r == nil {
			s.log.Warn("zwave: node record with a bad node id ignored", "file", path, "node", id)
			continue
		}
		s.nodes[byte(n)] = r
	}
	return nil
}

func (s *store) nodesName() string { return fmt.Sprintf("nodes-%08x.json", s.home) }

// record returns a copy of a node's record (zero when none).
func (s *store) record(node byte) nodeRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.nodes[node]; r != nil {
		return *r
	}
	return nodeRecord{}
}

// update changes a node's record and saves the records.
func (s *store) update(node byte, f func(r *nodeRecord)) error {
	s.mu.Lock()
	r := s.nodes[node]
	if r == nil {
		r = &nodeRecord{}
		s.nodes[node] = r
	}
	f(r)
	r.Updated = time.Now().UTC()
	return s.save()
}

// forget drops a node's record (the node left the network).
func (s *store) forget(node byte) error {
	s.mu.Lock()
	if _, ok := s.nodes[node]; !ok {
		s.mu.Unlock()
		return nil
	}
	delete(s.nodes, node)
	return s.save()
}

// save writes the records; s.mu must be held and is released. A write
// that lost the race to a newer one is skipped.
func (s *store) save() error {
	s.version++
	v, name := s.version, s.nodesName()
	f := nodesFile{HomeID: fmt.Sprintf("0x%08X", s.home), Nodes: map[string]*nodeRecord{}}
	for id, r := range s.nodes {
		f.Nodes[strconv.Itoa(int(id))] = r
	}
	b, err := json.MarshalIndent(f, "", "  ")
	s.mu.Unlock()
	if err != nil || s.dir == "" {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if v <= s.written {
		return nil
	}
	if err := writeFileAtomic(s.dir, name, b); err != nil {
		return fmt.Errorf("zwave: save node records: %w", err)
	}
	s.written = v
	return nil
}

// writeFileAtomic replaces dir/name with data (mode 0600), so that a crash
// leaves the old or the new file, never half of one.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, name), data, fileMode)
}
