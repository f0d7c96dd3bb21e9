package zwave

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Security classes, lowest first. A node is granted a set of them at
// inclusion and talks at its highest one; secTemp is the temporary key of
// an S2 key exchange.
type secClass uint8

const (
	secNone secClass = iota
	secS0
	secS2Unauth
	secS2Auth
	secS2AC
	secTemp
)

var secNames = map[secClass]string{
	secNone: "none", secS0: "s0", secS2Unauth: "s2_unauthenticated",
	secS2Auth: "s2_authenticated", secS2AC: "s2_access_control", secTemp: "temporary",
}

func (s secClass) String() string {
	if n, ok := secNames[s]; ok {
		return n
	}
	return fmt.Sprintf("class(%d)", uint8(s))
}

func (s secClass) isS2() bool { return s >= secS2Unauth && s <= secS2AC }

// parseSecClass reads a class name as nodes.json and the RPC write it.
func parseSecClass(name string) (secClass, bool) {
	for c, n := range secNames {
		if n == name && c != secTemp {
			return c, true
		}
	}
	return secNone, false
}

// KEX key bitmask bits (KEX Report, KEX Set, Network Key Get/Report).
var kexBit = map[secClass]byte{secS2Unauth: 0x01, secS2Auth: 0x02, secS2AC: 0x04, secS0: 0x80}

func classesOfMask(mask byte) []secClass {
	var out []secClass
	for _, c := range []secClass{secS2AC, secS2Auth, secS2Unauth, secS0} {
		if mask&kexBit[c] != 0 {
			out = append(out, c)
		}
	}
	return out
}

func maskOf(cs []secClass) byte {
	var m byte
	for _, c := range cs {
		m |= kexBit[c]
	}
	return m
}

// Security 2 (0x9F) and Security 0 (0x98) commands.
const (
	ccSecurity0 = 0x98
	ccSecurity2 = 0x9F

	s2NonceGet      = 0x01
	s2NonceReport   = 0x02
	s2Encap         = 0x03
	s2KEXGet        = 0x04
	s2KEXReport     = 0x05
	s2KEXSet        = 0x06
	s2KEXFail       = 0x07
	s2PublicKey     = 0x08
	s2NetKeyGet     = 0x09
	s2NetKeyReport  = 0x0A
	s2NetKeyVerify  = 0x0B
	s2TransferEnd   = 0x0C
	s2CmdsSupGet    = 0x0D
	s2CmdsSupReport = 0x0E

	s0CmdsSupGet    = 0x02
	s0CmdsSupReport = 0x03
	s0SchemeGet     = 0x04
	s0SchemeReport  = 0x05
	s0NetKeySet     = 0x06
	s0NetKeyVerify  = 0x07
	s0NonceGet      = 0x40
	s0NonceReport   = 0x80
	s0Encap         = 0x81
	s0EncapNonceGet = 0xC1
)

// Limits of the security layer.
const (
	s2TagLen         = 8
	s2EntropyLen     = 16
	s2DecryptTries   = 5                      // nonces tried ahead when the SPAN may have drifted
	s2CollisionTime  = 500 * time.Millisecond // how long our last nonce may be the peer's too
	s0NonceLife      = 10 * time.Second       // how long a nonce we handed out stays valid
	s0MaxNonces      = 32                     // nonces handed out and not yet used, all nodes
	s0SequencedLife  = 10 * time.Second       // first half of a two-frame S0 message
	s0MaxPayload     = 26                     // one S0 frame: 46 bytes minus the encapsulation
	extSPAN          = 0x01
	extMPAN          = 0x02
	extMGRP          = 0x03
	extMOS           = 0x04
	extCritical      = 0x40
	extMoreToFollow  = 0x80
	s2FlagExtensions = 0x01
	s2FlagEncExt     = 0x02
)

// Why a secure frame could not be used. They are counted (see metrics.go)
// and never stop the connector.
var (
	errNeedNonce   = errors.New("no nonce agreed with the node yet")
	errS2NoSPAN    = errors.New("S2 frame without a nonce agreed with the node (nonces resynchronised)")
	errS2Decrypt   = errors.New("S2 frame failed authentication (wrong key, or nonces out of step: resynchronised)")
	errS2Duplicate = errors.New("S2 frame repeated (same sequence number)")
	errS2Malformed = errors.New("S2 frame malformed")
	errS0Nonce     = errors.New("S0 frame names a nonce that was not handed out or has expired")
	errS0MAC       = errors.New("S0 frame failed authentication (wrong key)")
	errS0Malformed = errors.New("S0 frame malformed")
	errNoKeys      = errors.New("the network keys are missing (keys.json in the state dir): restore it from the zwave.keys export, or include the node again")
)

// SPAN states of a node pair (S2 singlecast nonces).
type spanState uint8

const (
	spanNone   spanState = iota
	spanLocal            // we sent our entropy (Nonce Report); the node's comes with its next frame
	spanRemote           // the node sent its entropy; ours goes with our next frame
	spanReady            // a nonce generator runs on both sides
)

// s2Peer is the S2 state of one node.
type s2Peer struct {
	state    spanState
	rei      [s2EntropyLen]byte // receiver entropy (ours in spanLocal, the node's in spanRemote)
	class    secClass           // of the running SPAN
	span     *ctrDRBG
	lastSent []byte    // the nonce of our last frame (the node may have used it too)
	lastAt   time.Time // when lastSent was used
	ownSeq   byte
	peerSeq  int // last sequence number received, -1 before the first

	temp      *s2Keys  // key exchange: the temporary keys
	verifying secClass // key exchange: the key the node is proving it received
}

// s0Nonce is a nonce we handed to a node for its next S0 frame.
type s0Nonce struct {
	node    byte
	nonce   [8]byte
	expires time.Time
}

// security holds the network keys and the per-node nonce state. Every
// method is safe for concurrent use.
type security struct {
	mu    sync.Mutex
	own   byte
	home  uint32
	s2    map[secClass]*s2Keys // nil until the keys are loaded
	s0net []byte               // S0 network key
	s0a   [16]byte             // S0 authentication key
	s0e   [16]byte             // S0 encryption key
	peers map[byte]*s2Peer

	s0nonces []s0Nonce
	s0first  map[byte]s0Half // first halves of sequenced S0 messages
	now      func() time.Time
}

type s0Half struct {
	counter byte
	data    []byte
	at      time.Time
}

func newSecurity() *security {
	return &security{peers: map[byte]*s2Peer{}, s0first: map[byte]s0Half{}, now: time.Now}
}

// setKeys installs the network keys.
func (s *security) setKeys(k *netKeys) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s2 = map[secClass]*s2Keys{}
	for _, c := range []secClass{secS2Unauth, secS2Auth, secS2AC, secS0} {
		x := expandNetworkKey(k.of(c))
		s.s2[c] = &x
	}
	s.s0net = append([]byte(nil), k.of(secS0)...)
	s.s0a, s.s0e = s0Keys(s.s0net)
}

func (s *security) hasKeys() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s2 != nil
}

// session records our node id and home id (the authentication data of S2)
// and forgets every nonce: the nodes resynchronise with the new session.
func (s *security) session(own byte, home uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.own, s.home = own, home
	s.peers = map[byte]*s2Peer{}
	s.s0nonces = nil
	s.s0first = map[byte]s0Half{}
}

func (s *security) peer(node byte) *s2Peer {
	p := s.peers[node]
	if p == nil {
		var seq [1]byte
		rand.Read(seq[:])
		p = &s2Peer{ownSeq: seq[0], peerSeq: -1}
		s.peers[node] = p
	}
	return p
}

func (p *s2Peer) nextSeq() byte {
	p.ownSeq++
	return p.ownSeq
}

// keysFor returns the S2 keys of a class; s.mu must be held.
func (s *security) keysFor(p *s2Peer, c secClass) (*s2Keys, error) {
	if c == secTemp {
		if p.temp == nil {
			return nil, fmt.Errorf("no key exchange runs with the node")
		}
		return p.temp, nil
	}
	if s.s2 == nil {
		return nil, errNoKeys
	}
	k := s.s2[c]
	if k == nil {
		return nil, fmt.Errorf("no S2 key for class %s", c)
	}
	return k, nil
}

// reset forgets the SPAN of a node (the next frame starts with a nonce
// exchange).
func (s *security) reset(node byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peer(node)
	p.state, p.span, p.lastSent = spanNone, nil, nil
}

// setTemp starts (keys != nil) or ends the key exchange with a node.
func (s *security) setTemp(node byte, keys *s2Keys, verifying secClass) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peer(node)
	p.temp, p.verifying = keys, verifying
}

// exchanging reports whether a key exchange runs with the node.
func (s *security) exchanging(node byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer(node).temp != nil
}

func (s *security) setVerifying(node byte, c secClass) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peer(node).verifying = c
}

// s2NonceGet builds a Nonce Get to a node.
func (s *security) s2NonceGet(node byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []byte{ccSecurity2, s2NonceGet, s.peer(node).nextSeq()}
}

// s2NonceReport builds a Nonce Report with new receiver entropy (SOS) and
// makes it the node's pending SPAN input: the node's next frame carries
// its sender entropy.
func (s *security) s2NonceReport(node byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peer(node)
	rand.Read(p.rei[:])
	p.state, p.span, p.lastSent = spanLocal, nil, nil
	out := []byte{ccSecurity2, s2NonceReport, p.nextSeq(), 0x01}
	return append(out, p.rei[:]...)
}

// s2OnNonceReport takes a node's Nonce Report (the parameters after the
// command byte); SOS carries the node's receiver entropy, which our next
// frame completes.
func (s *security) s2OnNonceReport(node byte, p []byte) (sos bool, err error) {
	if len(p) < 2 {
		return false, errS2Malformed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.peer(node)
	if pr.peerSeq == int(p[0]) {
		return false, errS2Duplicate
	}
	pr.peerSeq = int(p[0])
	if p[1]&0x01 == 0 {
		return false, nil // MOS only: multicast, which the driver does not use
	}
	if len(p) < 2+s2EntropyLen {
		return false, errS2Malformed
	}
	copy(pr.rei[:], p[2:2+s2EntropyLen])
	pr.state, pr.span, pr.lastSent = spanRemote, nil, nil
	return true, nil
}

// s2Wrap encrypts cmd for a node at class c and returns the whole Message
// Encapsulation. errNeedNonce means a Nonce Get must come first.
func (s *security) s2Wrap(node byte, c secClass, cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peer(node)
	k, err := s.keysFor(p, c)
	if err != nil {
		return nil, err
	}
	var ext []byte
	switch {
	case p.state == spanRemote:
		var sei [s2EntropyLen]byte
		rand.Read(sei[:])
		p.span, p.class, p.state = newSPAN(k, sei[:], p.rei[:]), c, spanReady
		ext = append([]byte{2 + s2EntropyLen, extCritical | extSPAN}, sei[:]...)
	case p.state == spanReady && p.class == c:
	default:
		return nil, errNeedNonce
	}
	nonce := p.span.generate(16)[:ccmNonceLen]
	p.lastSent, p.lastAt = nonce, s.now()
	flags := byte(0)
	if ext != nil {
		flags = s2FlagExtensions
	}
	unenc := append([]byte{p.nextSeq(), flags}, ext...)
	msgLen := 2 + len(unenc) + len(cmd) + s2TagLen
	aad := s.aad(s.own, node, msgLen, unenc)
	sealed, err := ccmSeal(k.ccm[:], nonce, aad, cmd)
	if err != nil {
		return nil, err
	}
	out := append([]byte{ccSecurity2, s2Encap}, unenc...)
	return append(out, sealed...), nil
}

func (s *security) aad(src, dst byte, msgLen int, unenc []byte) []byte {
	a := make([]byte, 0, 8+len(unenc))
	a = append(a, src, dst)
	a = binary.BigEndian.AppendUint32(a, s.home)
	a = binary.BigEndian.AppendUint16(a, uint16(msgLen))
	return append(a, unenc...)
}

// s2Unwrap decrypts a Message Encapsulation from a node (p: the parameters
// after the command byte), trying the classes in candidates (highest
// first) when a new SPAN starts. It returns the inner command (possibly
// empty) and the class that decrypted it. errS2NoSPAN and errS2Decrypt
// mean the caller must send a Nonce Report to resynchronise.
func (s *security) s2Unwrap(node byte, p []byte, candidates []secClass) ([]byte, secClass, error) {
	if len(p) < 2+s2TagLen {
		return nil, secNone, errS2Malformed
	}
	seq, flags := p[0], p[1]
	off := 2
	var sei []byte
	if flags&s2FlagExtensions != 0 {
		exts, n, ok := parseS2Extensions(p[off:len(p)-s2TagLen], false)
		if !ok {
			return nil, secNone, errS2Malformed
		}
		off += n
		for _, e := range exts {
			if e.typ == extSPAN {
				sei = e.data
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.peer(node)
	prev := pr.peerSeq
	if prev == int(seq) {
		return nil, secNone, errS2Duplicate
	}
	pr.peerSeq = int(seq)
	ct, tag := p[off:len(p)-s2TagLen], p[len(p)-s2TagLen:]
	aad := s.aad(node, s.own, 2+len(p), p[:off])

	var (
		pt    []byte
		ok    bool
		class secClass
	)
	switch pr.state {
	case spanNone, spanRemote:
		return nil, secNone, errS2NoSPAN
	case spanLocal:
		if sei == nil {
			return nil, secNone, errS2NoSPAN
		}
		for _, c := range candidates {
			k, err := s.keysFor(pr, c)
			if err != nil {
				continue
			}
			span := newSPAN(k, sei, pr.rei[:])
			if pt, ok = ccmOpen(k.ccm[:], span.generate(16)[:ccmNonceLen], aad, ct, tag); ok {
				pr.span, pr.class, pr.state, class = span, c, spanReady, c
				break
			}
		}
	case spanReady:
		k, err := s.keysFor(pr, pr.class)
		if err != nil {
			return nil, secNone, err
		}
		// Both sides may have sent at once with the same nonce.
		if pr.lastSent != nil && s.now().Sub(pr.lastAt) < s2CollisionTime && prev >= 0 && seq == byte(prev+1) {
			pt, ok = ccmOpen(k.ccm[:], pr.lastSent, aad, ct, tag)
		}
		pr.lastSent = nil
		for i := 0; !ok && i < s2DecryptTries; i++ {
			pt, ok = ccmOpen(k.ccm[:], pr.span.generate(16)[:ccmNonceLen], aad, ct, tag)
		}
		class = pr.class
	}
	if !ok {
		return nil, secNone, errS2Decrypt
	}
	if flags&s2FlagEncExt != 0 {
		_, n, valid := parseS2Extensions(pt, true)
		if !valid {
			return nil, secNone, errS2Malformed
		}
		pt = pt[n:]
	}
	return pt, class, nil
}

type s2Ext struct {
	typ  byte
	data []byte
}

// parseS2Extensions reads the extensions at the start of b; ok is false
// when the frame must be discarded (a malformed or unknown critical
// extension).
func parseS2Extensions(b []byte, encrypted bool) (exts []s2Ext, n int, ok bool) {
	for {
		if len(b)-n < 2 {
			return nil, 0, false
		}
		l, t := int(b[n]), b[n+1]
		if l < 2 || n+l > len(b) {
			return nil, 0, false
		}
		typ := t & 0x3F
		data := b[n+2 : n+l]
		switch typ {
		case extSPAN:
			if l != 2+s2EntropyLen || encrypted {
				return nil, 0, false
			}
		case extMPAN:
			if !encrypted {
				return nil, 0, false
			}
		case extMGRP:
			if l != 3 {
				return nil, 0, false
			}
		case extMOS:
		default:
			if t&extCritical != 0 {
				return nil, 0, false
			}
		}
		exts = append(exts, s2Ext{typ: typ, data: data})
		n += l
		if t&extMoreToFollow == 0 {
			return exts, n, true
		}
	}
}

// s0NonceReport hands a node a new nonce for its next S0 frame.
func (s *security) s0NonceReport(node byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	live := s.s0nonces[:0]
	for _, n := range s.s0nonces {
		if now.Before(n.expires) {
			live = append(live, n)
		}
	}
	s.s0nonces = live
	if len(s.s0nonces) >= s0MaxNonces {
		s.s0nonces = append(s.s0nonces[:0], s.s0nonces[1:]...)
	}
	var nn s0Nonce
	nn.node, nn.expires = node, now.Add(s0NonceLife)
	for {
		rand.Read(nn.nonce[:])
		unique := true
		for _, o := range s.s0nonces {
			unique = unique && o.nonce[0] != nn.nonce[0]
		}
		if unique {
			break
		}
	}
	s.s0nonces = append(s.s0nonces, nn)
	return append([]byte{ccSecurity0, s0NonceReport}, nn.nonce[:]...)
}

// s0Unwrap authenticates and decrypts an S0 Message Encapsulation (p: the
// parameters after the command byte cmd). It returns nil, nil for the
// first half of a two-frame message.
func (s *security) s0Unwrap(node, cmd byte, p []byte) ([]byte, error) {
	if len(p) < 8+1+1+8 {
		return nil, errS0Malformed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s2 == nil {
		return nil, errNoKeys
	}
	return s.s0UnwrapWith(s.s0a[:], s.s0e[:], node, cmd, p)
}

// s0UnwrapWith is s0Unwrap with given keys; s.mu must be held.
func (s *security) s0UnwrapWith(auth, enc []byte, node, cmd byte, p []byte) ([]byte, error) {
	sn, ct, id, mac := p[:8], p[8:len(p)-9], p[len(p)-9], p[len(p)-8:]
	now := s.now()
	idx := -1
	for i, n := range s.s0nonces {
		if n.nonce[0] == id && n.node == node && now.Before(n.expires) {
			idx = i
		}
	}
	if idx < 0 {
		return nil, errS0Nonce
	}
	rn := s.s0nonces[idx].nonce
	s.s0nonces = append(s.s0nonces[:idx], s.s0nonces[idx+1:]...)
	iv := cat(sn, rn[:])
	want := cbcMAC8(auth, cat(iv, []byte{cmd, node, s.own, byte(len(ct))}, ct))
	if subtle.ConstantTimeCompare(want[:], mac) != 1 {
		return nil, errS0MAC
	}
	pt := make([]byte, len(ct))
	ofb(enc, iv, pt, ct)
	fc, body := pt[0], pt[1:]
	if fc&0x10 == 0 { // not sequenced
		return body, nil
	}
	counter := fc & 0x0F
	if fc&0x20 == 0 { // first of two frames
		s.s0first[node] = s0Half{counter: counter, data: body, at: now}
		return nil, nil
	}
	first, ok := s.s0first[node]
	delete(s.s0first, node)
	if !ok || first.counter != counter || now.Sub(first.at) > s0SequencedLife {
		return nil, fmt.Errorf("%w: second frame of a two-frame message without the first", errS0Malformed)
	}
	return cat(first.data, body), nil
}

// s0Wrap encrypts cmd for a node with the nonce it handed us.
func (s *security) s0Wrap(node byte, receiverNonce []byte, cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s2 == nil {
		return nil, errNoKeys
	}
	return s.s0WrapWith(s.s0a[:], s.s0e[:], node, receiverNonce, cmd)
}

// s0WrapWith is s0Wrap with given keys; s.mu must be held.
func (s *security) s0WrapWith(auth, enc []byte, node byte, rn []byte, cmd []byte) ([]byte, error) {
	if len(rn) != 8 {
		return nil, errS0Malformed
	}
	if len(cmd) > s0MaxPayload {
		return nil, fmt.Errorf("zwave: command of %d bytes is too long for one S0 frame (at most %d)", len(cmd), s0MaxPayload)
	}
	var sn [8]byte
	rand.Read(sn[:])
	pt := append([]byte{0x00}, cmd...)
	iv := cat(sn[:], rn)
	ct := make([]byte, len(pt))
	ofb(enc, iv, ct, pt)
	mac := cbcMAC8(auth, cat(iv, []byte{s0Encap, s.own, node, byte(len(ct))}, ct))
	out := append([]byte{ccSecurity0, s0Encap}, sn[:]...)
	out = append(out, ct...)
	out = append(out, rn[0])
	return append(out, mac[:]...), nil
}

// s0WrapTemp encrypts with the all-zero key that protects the S0 network
// key during inclusion.
func (s *security) s0WrapTemp(node byte, rn, cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s0Keys(make([]byte, 16))
	return s.s0WrapWith(a[:], e[:], node, rn, cmd)
}
