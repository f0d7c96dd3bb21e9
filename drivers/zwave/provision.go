package zwave

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// SmartStart: nodes listed in a provisioning list (each by its DSK, from
// its QR code or label) join on their own. While the list has entries the
// stick listens for SmartStart announcements; a node that announces the
// NWI home id of an entry's DSK is added (AddNodeToNetwork in SmartStart
// DSK mode) and given its S2 keys like an inclusion with a PIN, the PIN
// and the rest of the public key coming from the entry.

const (
	provisioningFile = "provisioning.json"
	// maxProvisioning bounds the provisioning list: a Z-Wave network has at
	// most 232 nodes.
	maxProvisioning = 232
	maxEntryText    = 64 // bytes of an entry's name or location

	modeSmartStartDSK    = 0x08
	modeSmartStartListen = 0x09

	fnGetVersion = 0x15

	updateSmartStartHomeID = 0x85

	// smartStartIncludeTimeout bounds the stick's part of a SmartStart
	// inclusion (the key exchange has its own bounds).
	smartStartIncludeTimeout = 60 * time.Second
)

// errProvisioningFull is returned when the list has maxProvisioning entries.
var errProvisioningFull = fmt.Errorf("zwave: the provisioning list is full (%d entries): remove entries first (zwave.provision_remove)", maxProvisioning)

// dskLen is the length of a DSK: the first 16 bytes of the node's public key.
const dskLen = 16

// parseDSK reads a DSK as printed on a label: 8 groups of 5 digits
// (00000..65535) separated by '-' (or spaces), or the 40 digits in one run.
// The first group is the node's PIN: it never goes into an error.
func parseDSK(s string) ([dskLen]byte, error) {
	var dsk [dskLen]byte
	s = strings.TrimSpace(s)
	var groups []string
	if len(s) == 40 && isDigits(s) {
		for i := 0; i < 40; i += 5 {
			groups = append(groups, s[i:i+5])
		}
	} else {
		groups = strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == ' ' })
	}
	if len(groups) != 8 {
		return dsk, fmt.Errorf("dsk: %d groups, want 8 groups of 5 digits (as on the label: nnnnn-nnnnn-...) or the QR code's digits", len(groups))
	}
	for i, g := range groups {
		n, err := strconv.Atoi(g)
		if len(g) != 5 || !isDigits(g) || err != nil || n > 65535 {
			return dsk, fmt.Errorf("dsk: group %d is not 5 digits from 00000 to 65535", i+1)
		}
		binary.BigEndian.PutUint16(dsk[2*i:], uint16(n))
	}
	return dsk, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseQR reads a SmartStart QR code: "90", a 2-digit version (00 S2,
// 01 SmartStart), a 5-digit checksum (the first two bytes of the SHA-1 of
// everything after it), 3 digits of requested keys, 40 digits of DSK, then
// information this driver does not need.
func parseQR(s string) ([dskLen]byte, []secClass, error) {
	var dsk [dskLen]byte
	if len(s) < 52 || !strings.HasPrefix(s, "90") || !isDigits(s) {
		return dsk, nil, errors.New("qr: not a Z-Wave QR code (52 or more digits starting with 90)")
	}
	if v := s[2:4]; v != "00" && v != "01" {
		return dsk, nil, fmt.Errorf("qr: version %s is not 00 (S2) or 01 (SmartStart)", v)
	}
	want, _ := strconv.Atoi(s[4:9])
	sum := sha1.Sum([]byte(s[9:]))
	if int(binary.BigEndian.Uint16(sum[:])) != want {
		return dsk, nil, errors.New("qr: checksum does not match (a digit was misread: scan it again)")
	}
	keys, _ := strconv.Atoi(s[9:12])
	if keys > 255 {
		return dsk, nil, errors.New("qr: requested keys are not a byte")
	}
	d, err := parseDSK(s[12:52])
	if err != nil {
		return dsk, nil, fmt.Errorf("qr: %w", err)
	}
	return d, classesOfMask(byte(keys)), nil
}

// parseDSKInput reads what an operator gives as "dsk": the label's DSK or
// a scanned QR code. classes are the keys a QR code says the node asks for.
func parseDSKInput(s string) (dsk [dskLen]byte, classes []secClass, err error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "90") && len(s) >= 52 {
		return parseQR(strings.Join(strings.Fields(s), ""))
	}
	dsk, err = parseDSK(s)
	return dsk, nil, err
}

// maskDSK shows a DSK without its first group (the PIN).
func maskDSK(dsk []byte) string {
	return "*****-" + formatDSK(dsk)[6:]
}

// hidePIN masks the first group of a DSK written as text; a node record
// kept by a version that stored the whole DSK shows without its PIN.
func hidePIN(dsk string) string {
	if len(dsk) < 6 || dsk[5] != '-' {
		return dsk
	}
	return "*****" + dsk[5:]
}

// nwiHomeID is the home id a SmartStart node announces itself with: bytes
// 9..12 of its DSK, the top two bits set and the lowest cleared.
func nwiHomeID(dsk []byte) [4]byte {
	var h [4]byte
	copy(h[:], dsk[8:12])
	h[0] |= 0xC0
	h[3] &^= 0x01
	return h
}

// authHomeID goes with the NWI home id in AddNodeToNetwork (SmartStart
// DSK): bytes 13..16 of the DSK, the top two bits cleared and the lowest
// set.
func authHomeID(dsk []byte) [4]byte {
	var h [4]byte
	copy(h[:], dsk[12:16])
	h[0] &^= 0xC0
	h[3] |= 0x01
	return h
}

// parseSmartStartUpdate reads the NWI home id of a "SmartStart home id
// received" application update (status, node id 0, rx status, home id,
// then the node's information).
func parseSmartStartUpdate(d []byte) ([4]byte, error) {
	var h [4]byte
	if len(d) < 7 || d[0] != updateSmartStartHomeID {
		return h, fmt.Errorf("zwave: SmartStart announcement of %d bytes", len(d))
	}
	copy(h[:], d[3:7])
	return h, nil
}

// provisionEntry is one node of the provisioning list, as kept on disk.
type provisionEntry struct {
	DSK      string    `json:"dsk"`
	Security []string  `json:"security"`
	Name     string    `json:"name,omitempty"`
	Location string    `json:"location,omitempty"`
	Added    time.Time `json:"added"`
	NodeID   int       `json:"node_id,omitempty"`
	Status   string    `json:"status,omitempty"`

	dsk [dskLen]byte
}

type provisioningFileData struct {
	Entries []*provisionEntry `json:"entries"`
}

// ProvisionEntry is an entry as the provision commands show it: the DSK
// without its PIN.
type ProvisionEntry struct {
	DSK      string   `json:"dsk" doc:"the DSK without its first group (the PIN)"`
	Security []string `json:"security" doc:"the keys the node may get (of those it asks for)"`
	Name     string   `json:"name,omitempty"`
	Location string   `json:"location,omitempty"`
	Added    string   `json:"added"`
	NodeID   int      `json:"node_id,omitempty" doc:"the node id it got when it joined"`
	Status   string   `json:"status,omitempty" doc:"included, or why its last inclusion failed"`
}

// ProvisionList is the answer of provision_list.
type ProvisionList struct {
	Entries   []ProvisionEntry `json:"entries"`
	Listening bool             `json:"listening" doc:"the stick listens for SmartStart nodes"`
	Error     string           `json:"error,omitempty" doc:"why the stick does not listen"`
	Ignored   int              `json:"unknown_announcements" doc:"announcements of SmartStart nodes not in the list, since start"`
}

type provisionAddParams struct {
	DSK      string   `json:"dsk" strict:"required" doc:"the node's DSK (8 groups of 5 digits, from its label) or its scanned QR code (90...)"`
	Security []string `json:"security" doc:"the keys the node may get: s2_access_control, s2_authenticated, s2_unauthenticated, s0; default: those its QR code asks for, else all"`
	Name     string   `json:"name" doc:"a name shown by zwave.nodes once the node joined"`
	Location string   `json:"location" doc:"where the node is"`
}

type provisionRemoveParams struct {
	DSK string `json:"dsk" strict:"required" doc:"the DSK, the QR code, or the DSK as provision_list shows it (*****-...)"`
}

// smartStart is the provisioning list and the stick's SmartStart state.
type smartStart struct {
	mu        sync.Mutex
	loaded    bool
	entries   []*provisionEntry
	listenCtl *controller // the session the stick listens in
	checked   *controller // the session whose support was checked
	support   error       // why that stick cannot listen
	including bool
	ignored   int

	join chan struct{} // one inclusion (classic or SmartStart) at a time
}

func newSmartStart() *smartStart { return &smartStart{join: make(chan struct{}, 1)} }

// lockJoin takes the inclusion lock within ctx.
func (c *Connector) lockJoin(ctx context.Context) (func(), error) {
	select {
	case c.ss.join <- struct{}{}:
		return func() { <-c.ss.join }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("zwave: waiting for a running inclusion (a SmartStart node joining?): %w", ctx.Err())
	}
}

// loadProvisioning reads the list once; c.ss.mu must be held.
func (c *Connector) loadProvisioning() error {
	if c.ss.loaded {
		return nil
	}
	if c.store.dir == "" {
		c.ss.loaded = true
		return nil
	}
	path := filepath.Join(c.store.dir, provisioningFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		c.ss.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("zwave: read the provisioning list: %w", err)
	}
	var f provisioningFileData
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("zwave: the provisioning list %s is damaged (%v): move it away and add the entries again", path, err)
	}
	for _, e := range f.Entries {
		if e == nil {
			continue
		}
		d, err := parseDSK(e.DSK)
		if err != nil {
			c.log.Warn("zwave: provisioning entry with a bad DSK ignored", "file", path, "err", err)
			continue
		}
		e.dsk = d
		if len(c.ss.entries) < maxProvisioning {
			c.ss.entries = append(c.ss.entries, e)
		}
	}
	c.ss.loaded = true
	return nil
}

// saveProvisioning writes the list (0600); c.ss.mu must be held.
func (c *Connector) saveProvisioning() error {
	if c.store.dir == "" {
		return errNoStateDir
	}
	b, err := json.MarshalIndent(provisioningFileData{Entries: c.ss.entries}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.store.dir, provisioningFile, b); err != nil {
		return fmt.Errorf("zwave: save the provisioning list: %w", err)
	}
	return nil
}

func (e *provisionEntry) view() ProvisionEntry {
	return ProvisionEntry{DSK: maskDSK(e.dsk[:]), Security: e.Security, Name: e.Name, Location: e.Location,
		Added: e.Added.UTC().Format(time.RFC3339), NodeID: e.NodeID, Status: e.Status}
}

func (e *provisionEntry) classes() []secClass {
	var out []secClass
	for _, n := range e.Security {
		if cl, ok := parseSecClass(n); ok && cl != secNone {
			out = append(out, cl)
		}
	}
	return out
}

// sameDevice tells whether two DSKs are the same node's: the PIN aside.
func sameDevice(a, b [dskLen]byte) bool { return bytes.Equal(a[2:], b[2:]) }

func checkText(field, s string) error {
	if len(s) > maxEntryText {
		return fmt.Errorf("%s: longer than %d bytes", field, maxEntryText)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s: contains a control character", field)
		}
	}
	return nil
}

func (c *Connector) provisionAdd(ctx context.Context, raw json.RawMessage) (any, error) {
	var p provisionAddParams
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	dsk, qrClasses, err := parseDSKInput(p.DSK)
	if err != nil {
		return nil, err
	}
	if err := checkText("name", p.Name); err != nil {
		return nil, err
	}
	if err := checkText("location", p.Location); err != nil {
		return nil, err
	}
	classes := qrClasses
	if len(p.Security) > 0 {
		classes = nil
		for _, n := range p.Security {
			cl, ok := parseSecClass(n)
			if !ok || cl == secNone {
				return nil, fmt.Errorf("security: %q is not one of s2_access_control, s2_authenticated, s2_unauthenticated, s0", n)
			}
			if !containsClass(classes, cl) {
				classes = append(classes, cl)
			}
		}
	}
	if len(classes) == 0 {
		classes = []secClass{secS2AC, secS2Auth, secS2Unauth, secS0}
	}
	names := make([]string, 0, len(classes))
	for _, cl := range sortClasses(classes) {
		names = append(names, cl.String())
	}
	e := &provisionEntry{DSK: formatDSK(dsk[:]), Security: names, Name: p.Name, Location: p.Location, Added: time.Now().UTC(), dsk: dsk}

	c.ss.mu.Lock()
	if err := c.loadProvisioning(); err != nil {
		c.ss.mu.Unlock()
		return nil, err
	}
	for _, x := range c.ss.entries {
		if sameDevice(x.dsk, dsk) {
			c.ss.mu.Unlock()
			return nil, fmt.Errorf("zwave: %s is already in the provisioning list: remove it first to change it", maskDSK(dsk[:]))
		}
	}
	if len(c.ss.entries) >= maxProvisioning {
		c.ss.mu.Unlock()
		return nil, errProvisioningFull
	}
	c.ss.entries = append(c.ss.entries, e)
	if err := c.saveProvisioning(); err != nil {
		c.ss.entries = c.ss.entries[:len(c.ss.entries)-1]
		c.ss.mu.Unlock()
		return nil, err
	}
	view := e.view()
	c.ss.mu.Unlock()
	c.log.Info("zwave: provisioning entry added", "dsk", view.DSK, "name", e.Name, "security", strings.Join(names, ","))

	ctl, err := c.session(ctx)
	if err == nil {
		err = c.smartStartSupported(ctx, ctl)
	}
	if err == nil {
		err = c.listenIdle(ctx, ctl)
	}
	if err != nil {
		return nil, fmt.Errorf("zwave: provisioning entry %s added and kept, but the stick does not listen for SmartStart nodes: %w", view.DSK, err)
	}
	return view, nil
}

func (c *Connector) provisionRemove(ctx context.Context, raw json.RawMessage) (any, error) {
	var p provisionRemoveParams
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	s := strings.TrimSpace(p.DSK)
	var dsk [dskLen]byte
	if rest, ok := strings.CutPrefix(s, "*****-"); ok {
		// The listed form: any PIN.
		d, err := parseDSK("00000-" + rest)
		if err != nil {
			return nil, err
		}
		dsk = d
	} else {
		d, _, err := parseDSKInput(s)
		if err != nil {
			return nil, err
		}
		dsk = d
	}
	c.ss.mu.Lock()
	if err := c.loadProvisioning(); err != nil {
		c.ss.mu.Unlock()
		return nil, err
	}
	idx := -1
	for i, x := range c.ss.entries {
		if sameDevice(x.dsk, dsk) {
			idx = i
		}
	}
	if idx < 0 {
		c.ss.mu.Unlock()
		return nil, fmt.Errorf("zwave: %s is not in the provisioning list (zwave.provision_list shows it)", maskDSK(dsk[:]))
	}
	old := c.ss.entries
	e := old[idx]
	c.ss.entries = append(append([]*provisionEntry(nil), old[:idx]...), old[idx+1:]...)
	if err := c.saveProvisioning(); err != nil {
		c.ss.entries = old
		c.ss.mu.Unlock()
		return nil, err
	}
	empty, listenCtl := len(c.ss.entries) == 0, c.ss.listenCtl
	if empty {
		c.ss.listenCtl = nil
	}
	c.ss.mu.Unlock()
	c.log.Info("zwave: provisioning entry removed", "dsk", maskDSK(dsk[:]), "name", e.Name)
	if empty && listenCtl != nil {
		// Nothing left to wait for: leave SmartStart listening mode
		// (a running inclusion leaves it on its own).
		select {
		case c.ss.join <- struct{}{}:
			if err := listenCtl.lockedSend(ctx, fnAddNode, modeStop, 0); err != nil {
				c.log.Warn("zwave: SmartStart listening not stopped", "err", err)
			}
			<-c.ss.join
		default:
		}
	}
	return e.view(), nil
}

func (c *Connector) provisionList(raw json.RawMessage) (any, error) {
	if err := decodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	c.ss.mu.Lock()
	defer c.ss.mu.Unlock()
	if err := c.loadProvisioning(); err != nil {
		return nil, err
	}
	out := ProvisionList{Entries: []ProvisionEntry{}, Ignored: c.ss.ignored}
	for _, e := range c.ss.entries {
		out.Entries = append(out.Entries, e.view())
	}
	if ctl, _ := c.current(); ctl != nil && c.ss.listenCtl == ctl {
		out.Listening = true
	}
	if c.ss.support != nil {
		out.Error = c.ss.support.Error()
	}
	return out, nil
}

// minSmartStartProtocol is the first Z-Wave library with SmartStart
// (Silicon Labs SDK 6.81); every 700/800-series stick has a later one.
var minSmartStartProtocol = [2]int{6, 1}

// smartStartSupport tells whether the stick can listen for SmartStart
// nodes: it implements AddNodeToNetwork and its Z-Wave library (the
// version string "Z-Wave 7.18") is recent enough.
func (c *Connector) smartStartSupport(ctx context.Context, ctl *controller) error {
	if !ctl.supports(fnAddNode) {
		return fmt.Errorf("zwave: SmartStart: the stick cannot include nodes: %w", errUnsupported)
	}
	if !ctl.supports(fnGetVersion) {
		return nil // cannot tell: try
	}
	f, err := ctl.request(ctx, fnGetVersion)
	if err != nil {
		return fmt.Errorf("zwave: SmartStart: read the stick's version: %w", err)
	}
	lib, _, _ := bytes.Cut(f.Data, []byte{0})
	major, minor, ok := parseLibraryVersion(string(lib))
	if !ok {
		c.log.Debug("zwave: stick version not understood; trying SmartStart", "version", string(lib))
		return nil
	}
	if major < minSmartStartProtocol[0] || major == minSmartStartProtocol[0] && minor < minSmartStartProtocol[1] {
		return fmt.Errorf("zwave: SmartStart needs a stick with Z-Wave library %d.%02d or later (SDK 6.81, every 700/800-series stick); this one has %q: %w",
			minSmartStartProtocol[0], minSmartStartProtocol[1], string(lib), errUnsupported)
	}
	return nil
}

// parseLibraryVersion reads "Z-Wave 7.18" (or "Z-Wave 7.18.1").
func parseLibraryVersion(s string) (major, minor int, ok bool) {
	v, found := strings.CutPrefix(s, "Z-Wave ")
	if !found {
		return 0, 0, false
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return ma, mi, err1 == nil && err2 == nil
}

// smartStartSupported is smartStartSupport, asked once per session.
func (c *Connector) smartStartSupported(ctx context.Context, ctl *controller) error {
	c.ss.mu.Lock()
	checked, support := c.ss.checked == ctl, c.ss.support
	c.ss.mu.Unlock()
	if checked {
		return support
	}
	support = c.smartStartSupport(ctx, ctl)
	if support != nil && (ctx.Err() != nil || errors.Is(support, errLinkDown)) {
		return support // not the stick's answer
	}
	c.ss.mu.Lock()
	c.ss.checked, c.ss.support = ctl, support
	c.ss.mu.Unlock()
	return support
}

// smartStartListen puts the stick into SmartStart listening mode when the
// provisioning list has entries. The stick leaves it for any other
// inclusion or exclusion, so it is called again after each.
func (c *Connector) smartStartListen(ctx context.Context, ctl *controller) error {
	c.ss.mu.Lock()
	if err := c.loadProvisioning(); err != nil {
		c.ss.mu.Unlock()
		return err
	}
	n := len(c.ss.entries)
	c.ss.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := c.smartStartSupported(ctx, ctl); err != nil {
		return err
	}
	// No callback: the stick answers with announcements.
	if err := ctl.lockedSend(ctx, fnAddNode, modeSmartStartListen|modeNetwork, 0); err != nil {
		return fmt.Errorf("zwave: start SmartStart listening: %w", err)
	}
	c.ss.mu.Lock()
	first := c.ss.listenCtl != ctl
	c.ss.listenCtl = ctl
	c.ss.mu.Unlock()
	if first {
		c.log.Info("zwave: the stick listens for SmartStart nodes", "entries", n)
	}
	return nil
}

// listenIdle starts SmartStart listening unless an inclusion runs (a new
// mode would end it; it listens again when it is done).
func (c *Connector) listenIdle(ctx context.Context, ctl *controller) error {
	select {
	case c.ss.join <- struct{}{}:
	default:
		return nil
	}
	defer func() { <-c.ss.join }()
	return c.smartStartListen(ctx, ctl)
}

// startSmartStart has a new session's stick listen when the list has
// entries.
func (c *Connector) startSmartStart(ctl *controller) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.listenIdle(ctx, ctl); err != nil {
		c.log.Warn("zwave: the stick does not listen for SmartStart nodes; provisioned nodes cannot join", "err", err)
	}
}

// resumeSmartStart returns the stick to SmartStart listening after an
// inclusion or exclusion, or at the start of a session.
func (c *Connector) resumeSmartStart(ctl *controller) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.smartStartListen(ctx, ctl); err != nil {
		c.log.Warn("zwave: the stick does not listen for SmartStart nodes; provisioned nodes cannot join", "err", err)
	}
}

// smartStartAnnounced handles a SmartStart node's announcement (on the
// reader goroutine: it must not block).
func (c *Connector) smartStartAnnounced(ctl *controller, f frame) {
	home, err := parseSmartStartUpdate(f.Data)
	if err != nil {
		c.log.Debug("zwave: malformed SmartStart announcement ignored", "err", err)
		return
	}
	// The reader must not wait for the list's disk writes: a node
	// announces itself every few seconds, so a busy list drops this one.
	if !c.ss.mu.TryLock() {
		return
	}
	defer c.ss.mu.Unlock()
	if c.ss.listenCtl != ctl {
		// Not asked for by this session (a stick left listening by an
		// earlier one, or a session still starting).
		c.log.Debug("zwave: SmartStart announcement while not listening ignored")
		return
	}
	var e *provisionEntry
	for _, x := range c.ss.entries {
		if nwiHomeID(x.dsk[:]) == home {
			e = x
			break
		}
	}
	if e == nil {
		c.ss.ignored++
		c.log.Debug("zwave: SmartStart node not in the provisioning list ignored", "nwi_home_id", fmt.Sprintf("%X", home[:]))
		return
	}
	if c.ss.including {
		return // it announces itself again
	}
	c.ss.including = true
	c.log.Info("zwave: provisioned SmartStart node announced itself; including it", "dsk", maskDSK(e.dsk[:]), "name", e.Name)
	go c.smartStartInclude(ctl, e.dsk, e.classes())
}

// smartStartInclude adds a provisioned node and gives it its S2 keys.
func (c *Connector) smartStartInclude(ctl *controller, dsk [dskLen]byte, classes []secClass) {
	defer func() {
		c.ss.mu.Lock()
		c.ss.including = false
		c.ss.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), smartStartIncludeTimeout+10*kexTimeout)
	defer cancel()
	select {
	case c.ss.join <- struct{}{}:
	default:
		return // another inclusion runs; the node announces itself again
	}
	defer func() { <-c.ss.join }()
	defer c.resumeSmartStart(ctl)

	status, node := c.smartStartJoin(ctx, ctl, dsk, classes)
	c.ss.mu.Lock()
	defer c.ss.mu.Unlock()
	for _, e := range c.ss.entries {
		if sameDevice(e.dsk, dsk) {
			e.Status = status
			if node != 0 {
				e.NodeID = int(node)
			}
			if err := c.saveProvisioning(); err != nil {
				c.log.Warn("zwave: provisioning list not saved", "err", err)
			}
		}
	}
}

// smartStartJoin runs the inclusion; it returns the entry's new status.
func (c *Connector) smartStartJoin(ctx context.Context, ctl *controller, dsk [dskLen]byte, classes []secClass) (string, byte) {
	masked := maskDSK(dsk[:])
	if err := c.keys(); err != nil {
		c.log.Warn("zwave: SmartStart inclusion not started", "dsk", masked, "err", err)
		return "not included: " + err.Error(), 0
	}
	res, err := ctl.addNodeDSK(ctx, nwiHomeID(dsk[:]), authHomeID(dsk[:]), smartStartIncludeTimeout)
	if err == nil && res.NodeID == 0 {
		err = errors.New("the stick added no node (the node did not finish joining: move it closer)")
	}
	if err != nil {
		c.log.Warn("zwave: SmartStart inclusion failed", "dsk", masked, "err", err)
		return "not included: " + err.Error(), 0
	}
	pol := includePolicy{security: "s2", pin: int(binary.BigEndian.Uint16(dsk[:])), dsk: dsk[:], allowed: classes}
	out, err := c.included(ctx, ctl, res, pol, JoinResult{NodeID: int(res.NodeID), CommandClasses: ccList(res.Info.CCs)})
	var name, location string
	c.ss.mu.Lock()
	for _, e := range c.ss.entries {
		if sameDevice(e.dsk, dsk) {
			name, location = e.Name, e.Location
		}
	}
	c.ss.mu.Unlock()
	if uerr := c.store.update(res.NodeID, func(r *nodeRecord) { r.Name, r.Location = name, location }); uerr != nil {
		c.log.Warn("zwave: node record not saved", "node", res.NodeID, "err", uerr)
	}
	if err != nil {
		return err.Error(), res.NodeID
	}
	jr := out.(JoinResult)
	c.log.Info("zwave: SmartStart node included", "node", res.NodeID, "name", name, "security", strings.Join(jr.Security, ","), "status", jr.Status)
	return jr.Status, res.NodeID
}
