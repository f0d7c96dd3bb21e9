package zwave

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Secure inclusion: after a node joined the network, the driver hands it
// network keys. S2 (Security 2) agrees on a temporary key with X25519,
// checks the node's DSK with the PIN printed on it (for the Authenticated
// and Access Control classes), then sends each granted key and has the
// node prove it received it. S0 sends its one key under a fixed
// temporary key.

// kexTimeout bounds each step of a key exchange (the S2 spec's TA1..TA5).
const kexTimeout = 10 * time.Second

// KEX Fail types (S2).
const (
	kexFailKey       = 0x01 // key failure: a key was requested that was not granted
	kexFailScheme    = 0x02
	kexFailCurves    = 0x03
	kexFailDecrypt   = 0x05
	kexFailCancel    = 0x06
	kexFailAuth      = 0x07
	kexFailKeyGet    = 0x08
	kexFailVerify    = 0x09
	kexFailKeyReport = 0x0A
)

var kexFailText = map[byte]string{
	kexFailKey:       "key failure",
	kexFailScheme:    "no common key exchange scheme",
	kexFailCurves:    "no common ECDH curve",
	kexFailDecrypt:   "a frame of the key exchange could not be decrypted (wrong PIN?)",
	kexFailCancel:    "cancelled",
	kexFailAuth:      "the echoed key exchange parameters do not match",
	kexFailKeyGet:    "a key was requested that was not granted",
	kexFailVerify:    "a key could not be verified",
	kexFailKeyReport: "a key report was not as expected",
}

// kexDecryptFailed is the command the receiver hands a running key
// exchange when a frame of the node could not be decrypted (it is not a
// Z-Wave command: 0xFF is no S2 command).
const kexDecryptFailed = 0xFF

// errKEX is in every error of a failed key exchange.
var errKEX = errors.New("secure inclusion failed")

// includePolicy is what the caller of "include" asked for.
type includePolicy struct {
	security  string // "auto", "s2", "s0", "none"
	pin       int    // -1 when none was given
	downgrade bool   // may grant less than the node asks for
	// SmartStart: the DSK of the node's provisioning entry (nil otherwise)
	// and the classes the entry allows.
	dsk     []byte
	allowed []secClass
}

// securedResult is what a secure inclusion gave the node.
type securedResult struct {
	classes []secClass
	dsk     string
}

// secure hands a node that just joined the keys the policy allows. It
// returns no classes for a node left without security on purpose.
func (c *Connector) secure(ctx context.Context, ctl *controller, node byte, ccs []byte, p includePolicy) (securedResult, error) {
	has := func(cc byte) bool {
		for _, x := range ccs {
			if x == cc {
				return true
			}
		}
		return false
	}
	s2, s0 := has(ccSecurity2), has(ccSecurity0)
	switch p.security {
	case "none":
		return securedResult{}, nil
	case "s2":
		if !s2 && !p.downgrade {
			return securedResult{}, fmt.Errorf("%w: node %d does not support S2 (give \"downgrade\": true to accept %s)", errKEX, node, map[bool]string{true: "S0", false: "no security"}[s0])
		}
	case "s0":
		if !s0 && !p.downgrade {
			return securedResult{}, fmt.Errorf("%w: node %d does not support S0 (give \"downgrade\": true to accept no security)", errKEX, node)
		}
		if s0 {
			return c.bootstrapS0(ctx, ctl, node)
		}
		return securedResult{}, nil
	}
	switch {
	case s2:
		return c.bootstrapS2(ctx, ctl, node, p)
	case s0:
		return c.bootstrapS0(ctx, ctl, node)
	}
	return securedResult{}, nil
}

// kexSession is a running S2 key exchange with one node.
type kexSession struct {
	c    *Connector
	ctl  *controller
	node byte
	w    *msgWaiter
}

// next waits for the node's next key exchange command.
func (k *kexSession) next(ctx context.Context, what string) (rxMsg, error) {
	m, err := k.c.waitMsg(ctx, k.ctl, k.w, kexTimeout, fmt.Sprintf("S2 inclusion of node %d: %s", k.node, what))
	if err != nil {
		return rxMsg{}, fmt.Errorf("%w: %w", errKEX, err)
	}
	if m.is(ccSecurity2, s2KEXFail) {
		t := byte(0)
		if len(m.cmd) > 2 {
			t = m.cmd[2]
		}
		return rxMsg{}, fmt.Errorf("%w: node %d gave up the key exchange: %s (KEX Fail 0x%02X)", errKEX, k.node, failText(t), t)
	}
	return m, nil
}

func failText(t byte) string {
	if s, ok := kexFailText[t]; ok {
		return s
	}
	return "unknown reason"
}

// fail tells the node the exchange is off and returns the error.
func (k *kexSession) fail(ctx context.Context, t byte, format string, args ...any) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := k.c.sendLocked(sctx, k.ctl, k.node, []byte{ccSecurity2, s2KEXFail, t}, sendOpts{plain: true}); err != nil {
		k.c.log.Debug("zwave: KEX Fail not delivered", "node", k.node, "err", err)
	}
	return fmt.Errorf("%w: node %d: %s", errKEX, k.node, fmt.Sprintf(format, args...))
}

// bootstrapS2 runs the S2 key exchange (including node side).
func (c *Connector) bootstrapS2(ctx context.Context, ctl *controller, node byte, p includePolicy) (res securedResult, err error) {
	unlock, err := c.lockNode(ctx, node)
	if err != nil {
		return res, err
	}
	defer unlock()
	k := &kexSession{c: c, ctl: ctl, node: node}
	k.w = c.expectN(8, true, func(m rxMsg) bool {
		return m.node == node && len(m.cmd) >= 2 && m.cmd[0] == ccSecurity2 &&
			m.cmd[1] != s2NonceGet && m.cmd[1] != s2NonceReport && m.cmd[1] != s2Encap
	})
	defer c.unexpect(k.w)
	defer func() {
		c.sec.setTemp(node, nil, secNone)
		c.sec.reset(node)
	}()

	// KEX Get → KEX Report: what the node supports and asks for.
	if err := c.sendLocked(ctx, ctl, node, []byte{ccSecurity2, s2KEXGet}, sendOpts{plain: true}); err != nil {
		return res, fmt.Errorf("%w: %w", errKEX, err)
	}
	m, err := k.next(ctx, "KEX Report")
	if err != nil {
		return res, err
	}
	if !m.is(ccSecurity2, s2KEXReport) || len(m.cmd) < 6 || m.sec != secNone || m.cmd[2]&0x01 != 0 {
		return res, k.fail(ctx, kexFailCancel, "expected a KEX Report, got % X", m.cmd)
	}
	reportFlags, schemes, curves, reqMask := m.cmd[2], m.cmd[3], m.cmd[4], m.cmd[5]
	if schemes&0x02 == 0 {
		return res, k.fail(ctx, kexFailScheme, "the node supports no key exchange scheme the driver knows (0x%02X)", schemes)
	}
	if curves&0x01 == 0 {
		return res, k.fail(ctx, kexFailCurves, "the node supports no ECDH curve the driver knows (0x%02X)", curves)
	}
	requested := classesOfMask(reqMask)
	grant, err := grantFor(requested, p)
	if err != nil {
		return res, k.fail(ctx, kexFailCancel, "%v", err)
	}
	needPIN := false
	for _, g := range grant {
		needPIN = needPIN || g == secS2Auth || g == secS2AC
	}
	c.log.Info("zwave: S2 inclusion: the node asks for keys", "node", node, "requested", fmt.Sprint(requested), "granted", fmt.Sprint(grant))

	// KEX Set → Public Key Report of the node.
	grantMask := maskOf(grant)
	kexSet := []byte{ccSecurity2, s2KEXSet, 0x00, 0x02, 0x01, grantMask}
	if err := c.sendLocked(ctx, ctl, node, kexSet, sendOpts{plain: true}); err != nil {
		return res, fmt.Errorf("%w: %w", errKEX, err)
	}
	if m, err = k.next(ctx, "the node's public key"); err != nil {
		return res, err
	}
	if !m.is(ccSecurity2, s2PublicKey) || len(m.cmd) < 3+32 || m.cmd[2]&0x01 != 0 || m.sec != secNone {
		return res, k.fail(ctx, kexFailCancel, "expected the node's public key, got % X", m.cmd)
	}
	pubB := append([]byte(nil), m.cmd[3:3+32]...)
	if p.dsk != nil {
		// SmartStart: the key must be the one of the provisioning entry;
		// a node that hides its PIN gets the entry's.
		if pubB[0] == 0 && pubB[1] == 0 {
			copy(pubB, p.dsk[:2])
		}
		if !bytes.Equal(pubB[2:16], p.dsk[2:16]) {
			return res, k.fail(ctx, kexFailCancel, "the node's public key is not the DSK of its provisioning entry %s", maskDSK(p.dsk))
		}
	} else if needPIN {
		// The node hides the first two bytes of its key; they are the PIN.
		binary.BigEndian.PutUint16(pubB, uint16(p.pin))
	}
	// The DSK's first group is the PIN on the node's label, the secret
	// that authenticates it: shown, logged and stored without it. The
	// other seven groups are enough to compare with the label.
	res.dsk = maskDSK(pubB)

	// Our public key; both sides derive the temporary key.
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return res, k.fail(ctx, kexFailCancel, "make a key pair: %v", err)
	}
	pubA := priv.PublicKey().Bytes()
	peerKey, err := ecdh.X25519().NewPublicKey(pubB)
	if err != nil {
		return res, k.fail(ctx, kexFailCancel, "the node's public key is not usable: %v", err)
	}
	shared, err := priv.ECDH(peerKey)
	if err != nil {
		return res, k.fail(ctx, kexFailCancel, "the node's public key is not usable: %v", err)
	}
	temp := expandTempKey(tempPRK(shared, pubA, pubB))
	c.sec.reset(node)
	c.sec.setTemp(node, &temp, secNone)
	if err := c.sendLocked(ctx, ctl, node, append([]byte{ccSecurity2, s2PublicKey, 0x01}, pubA...), sendOpts{plain: true}); err != nil {
		return res, fmt.Errorf("%w: %w", errKEX, err)
	}

	// The node echoes our KEX Set under the temporary key: proof that
	// both sides have the same key, which needs the right PIN.
	if m, err = k.next(ctx, "the echo of KEX Set"); err != nil {
		return res, err
	}
	if m.is(ccSecurity2, kexDecryptFailed) {
		if p.dsk != nil {
			return res, k.fail(ctx, kexFailDecrypt, "the node's answer could not be decrypted: the DSK of its provisioning entry %s does not match the node (check the entry against its label or QR code)", maskDSK(p.dsk))
		}
		if needPIN {
			return res, k.fail(ctx, kexFailDecrypt, "the node's answer could not be decrypted: the PIN %05d does not match the node's DSK (check the 5 underlined digits on its label)", p.pin)
		}
		return res, k.fail(ctx, kexFailDecrypt, "the node's answer could not be decrypted")
	}
	if !m.is(ccSecurity2, s2KEXSet) || m.sec != secTemp || len(m.cmd) < 6 || m.cmd[2]&0x01 == 0 {
		return res, k.fail(ctx, kexFailAuth, "expected the echo of KEX Set under the temporary key, got % X", m.cmd)
	}
	if m.cmd[3] != kexSet[3] || m.cmd[4] != kexSet[4] || m.cmd[5] != grantMask {
		return res, k.fail(ctx, kexFailAuth, "the echoed KEX Set % X differs from the one sent % X", m.cmd[2:6], kexSet[2:6])
	}
	echo := []byte{ccSecurity2, s2KEXReport, reportFlags&0x02 | 0x01, schemes, curves, reqMask}
	if err := c.sendLocked(ctx, ctl, node, echo, sendOpts{class: secTemp}); err != nil {
		return res, fmt.Errorf("%w: %w", errKEX, err)
	}

	keys, err := c.store.loadKeys(true)
	if err != nil {
		return res, k.fail(ctx, kexFailCancel, "%v", err)
	}
	// Each granted key: Network Key Get → Report → Verify → Transfer End.
	sent := map[secClass]bool{}
	for len(sent) < len(grant) {
		if m, err = k.next(ctx, "Network Key Get"); err != nil {
			return res, err
		}
		if !m.is(ccSecurity2, s2NetKeyGet) || m.sec != secTemp || len(m.cmd) < 3 {
			return res, k.fail(ctx, kexFailKeyGet, "expected a Network Key Get under the temporary key, got % X", m.cmd)
		}
		cs := classesOfMask(m.cmd[2])
		if len(cs) != 1 || !containsClass(grant, cs[0]) || sent[cs[0]] {
			return res, k.fail(ctx, kexFailKeyGet, "the node asks for key 0x%02X, which was not granted", m.cmd[2])
		}
		cl := cs[0]
		c.sec.setVerifying(node, cl)
		report := append([]byte{ccSecurity2, s2NetKeyReport, kexBit[cl]}, keys.of(cl)...)
		if err := c.sendLocked(ctx, ctl, node, report, sendOpts{class: secTemp, secret: true}); err != nil {
			return res, fmt.Errorf("%w: %w", errKEX, err)
		}
		if m, err = k.next(ctx, "Network Key Verify"); err != nil {
			return res, err
		}
		if !m.is(ccSecurity2, s2NetKeyVerify) || m.sec != cl {
			return res, k.fail(ctx, kexFailVerify, "the node did not prove it has the %s key (got % X with %s)", cl, m.cmd, m.sec)
		}
		sent[cl] = true
		c.sec.setVerifying(node, secNone)
		c.sec.reset(node) // back to the temporary key: a new nonce exchange
		if err := c.sendLocked(ctx, ctl, node, []byte{ccSecurity2, s2TransferEnd, 0x02}, sendOpts{class: secTemp}); err != nil {
			return res, fmt.Errorf("%w: %w", errKEX, err)
		}
	}
	if m, err = k.next(ctx, "Transfer End"); err != nil {
		return res, err
	}
	if !m.is(ccSecurity2, s2TransferEnd) || m.sec != secTemp || len(m.cmd) < 3 || m.cmd[2]&0x01 == 0 {
		return res, k.fail(ctx, kexFailCancel, "expected the node's Transfer End, got % X", m.cmd)
	}
	res.classes = sortClasses(grant)
	return res, nil
}

// grantFor chooses the keys a node gets: what it asks for, unless it asks
// for an authenticated class without a PIN; then only with downgrade,
// and without the authenticated classes.
func grantFor(requested []secClass, p includePolicy) ([]secClass, error) {
	if len(requested) == 0 {
		return nil, errors.New("the node asks for no key")
	}
	if p.allowed != nil {
		var out []secClass
		for _, c := range requested {
			if containsClass(p.allowed, c) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("the node asks for %v, none of which its provisioning entry allows (%v)", requested, p.allowed)
		}
		return out, nil
	}
	auth := containsClass(requested, secS2Auth) || containsClass(requested, secS2AC)
	if !auth || p.pin >= 0 {
		return requested, nil
	}
	if !p.downgrade {
		return nil, fmt.Errorf("the node asks for %s, which needs its PIN: give \"pin\" (the 5 underlined digits of the DSK on its label), or \"downgrade\": true to grant it S2 Unauthenticated only", highestOf(requested))
	}
	var out []secClass
	for _, c := range requested {
		if c != secS2Auth && c != secS2AC {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the node asks only for %s, which needs its PIN: give \"pin\"", highestOf(requested))
	}
	return out, nil
}

func containsClass(cs []secClass, c secClass) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func highestOf(cs []secClass) secClass {
	h := secNone
	for _, c := range cs {
		if c > h {
			h = c
		}
	}
	return h
}

func sortClasses(cs []secClass) []secClass {
	out := append([]secClass(nil), cs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] > out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// bootstrapS0 hands a node the S0 key (Scheme Get, Network Key Set under
// the all-zero key, Network Key Verify under the real one).
func (c *Connector) bootstrapS0(ctx context.Context, ctl *controller, node byte) (securedResult, error) {
	var res securedResult
	keys, err := c.store.loadKeys(true)
	if err != nil {
		return res, fmt.Errorf("%w: %w", errKEX, err)
	}
	unlock, err := c.lockNode(ctx, node)
	if err != nil {
		return res, err
	}
	defer unlock()
	w := c.expectN(4, true, func(m rxMsg) bool {
		return m.node == node && (m.is(ccSecurity0, s0SchemeReport) || m.is(ccSecurity0, s0NetKeyVerify))
	})
	defer c.unexpect(w)
	fail := func(err error) (securedResult, error) {
		return res, fmt.Errorf("%w: S0 inclusion of node %d: %w", errKEX, node, err)
	}
	if err := c.sendLocked(ctx, ctl, node, []byte{ccSecurity0, s0SchemeGet, 0x00}, sendOpts{plain: true}); err != nil {
		return fail(err)
	}
	m, err := c.waitMsg(ctx, ctl, w, kexTimeout, "S0 Scheme Report")
	if err != nil {
		return fail(err)
	}
	if !m.is(ccSecurity0, s0SchemeReport) || m.sec != secNone {
		return fail(fmt.Errorf("expected a Scheme Report, got % X", m.cmd))
	}
	rn, err := c.s0Nonce(ctx, ctl, node)
	if err != nil {
		return fail(err)
	}
	set := append([]byte{ccSecurity0, s0NetKeySet}, keys.of(secS0)...)
	if err := ctl.sendDataWith(ctx, node, true, func() ([]byte, error) { return c.sec.s0WrapTemp(node, rn, set) }); err != nil {
		return fail(err)
	}
	if m, err = c.waitMsg(ctx, ctl, w, kexTimeout, "S0 Network Key Verify"); err != nil {
		return fail(err)
	}
	if !m.is(ccSecurity0, s0NetKeyVerify) || m.sec != secS0 {
		return fail(fmt.Errorf("the node did not prove it has the key (got % X with %s)", m.cmd, m.sec))
	}
	res.classes = []secClass{secS0}
	return res, nil
}

// secureCommands asks a node which command classes it supports securely
// (S2 or S0 Commands Supported Get), at its highest class.
func (c *Connector) secureCommands(ctx context.Context, ctl *controller, node byte, cl secClass) ([]int, error) {
	get, rep := []byte{ccSecurity2, s2CmdsSupGet}, byte(s2CmdsSupReport)
	cc := byte(ccSecurity2)
	if cl == secS0 {
		get, rep, cc = []byte{ccSecurity0, s0CmdsSupGet}, s0CmdsSupReport, ccSecurity0
	}
	m, err := c.request(ctx, ctl, node, get, sendOpts{class: cl}, func(m rxMsg) bool {
		return m.is(cc, rep) && m.sec == cl
	}, c.set.ReportTimeout, fmt.Sprintf("secure command classes of node %d", node))
	if err != nil {
		return nil, err
	}
	list := m.cmd[2:]
	if cl == secS0 && len(list) > 0 {
		list = list[1:] // reports to follow
	}
	out := []int{}
	for _, x := range list {
		if x == 0xEF { // COMMAND_CLASS_MARK: the rest are controlled
			break
		}
		out = append(out, int(x))
	}
	return out, nil
}
