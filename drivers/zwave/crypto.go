package zwave

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// Cryptographic building blocks of Z-Wave security, made from the standard
// library's AES block cipher:
//
//   - AES-CMAC (RFC 4493): S2 key derivation (CKDF).
//   - AES-CCM with a 13-byte nonce and an 8-byte tag (RFC 3610, L=2,
//     M=8): S2 message encryption.
//   - CTR_DRBG with AES-128 and no derivation function (NIST SP 800-90A):
//     the S2 nonce generator (SPAN).
//   - AES-OFB and AES-CBC-MAC: S0 message encryption and authentication.
//
// Key agreement (X25519) comes from crypto/ecdh.

const blockSize = aes.BlockSize

// newAES returns the AES-128 block cipher for key.
func newAES(key []byte) cipher.Block {
	b, err := aes.NewCipher(key)
	if err != nil {
		// Every key here is 16 bytes by construction.
		panic(fmt.Sprintf("zwave: AES key of %d bytes", len(key)))
	}
	return b
}

// cmac computes AES-CMAC (RFC 4493) of msg under key.
func cmac(key, msg []byte) [16]byte {
	c := newAES(key)
	var l, k1, k2 [16]byte
	c.Encrypt(l[:], l[:])
	shiftXor(&k1, l)
	shiftXor(&k2, k1)

	n := (len(msg) + blockSize - 1) / blockSize
	complete := n > 0 && len(msg)%blockSize == 0
	if n == 0 {
		n = 1
	}
	var x, last [16]byte
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[i*blockSize:(i+1)*blockSize])
		c.Encrypt(x[:], x[:])
	}
	rest := msg[(n-1)*blockSize:]
	copy(last[:], rest)
	if complete {
		subtle.XORBytes(last[:], last[:], k1[:])
	} else {
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	c.Encrypt(x[:], x[:])
	return x
}

// shiftXor sets dst to src shifted left by one bit, XORed with the CMAC
// constant Rb when the bit shifted out was set (RFC 4493 subkeys).
func shiftXor(dst *[16]byte, src [16]byte) {
	var carry byte
	for i := 15; i >= 0; i-- {
		dst[i] = src[i]<<1 | carry
		carry = src[i] >> 7
	}
	if carry != 0 {
		dst[15] ^= 0x87
	}
}

// CCM parameters of Z-Wave S2: a 13-byte nonce leaves a 2-byte length
// field (L=2); the tag is 8 bytes (M=8).
const (
	ccmNonceLen = 13
	ccmTagLen   = 8
	ccmMaxLen   = 0xFFFF
	ccmMaxAAD   = 0xFEFF // AAD length in two bytes (RFC 3610 §2.2)
)

var errCCM = errors.New("zwave: CCM input out of range")

// ccmMAC computes the CBC-MAC T of CCM over the nonce, aad and plaintext.
func ccmMAC(c cipher.Block, nonce, aad, plaintext []byte) [16]byte {
	var x, b [16]byte
	b[0] = byte((ccmTagLen-2)/2)<<3 | (15 - ccmNonceLen - 1)
	if len(aad) > 0 {
		b[0] |= 0x40
	}
	copy(b[1:], nonce)
	binary.BigEndian.PutUint16(b[14:], uint16(len(plaintext)))
	c.Encrypt(x[:], b[:])
	if len(aad) > 0 {
		// The AAD is prefixed with its 2-byte length and zero padded.
		buf := make([]byte, 0, 2+len(aad)+blockSize)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(aad)))
		buf = append(buf, aad...)
		cbcBlocks(c, &x, buf)
	}
	cbcBlocks(c, &x, plaintext)
	return x
}

// cbcBlocks runs CBC over data (zero padded to whole blocks) from the
// chaining value x.
func cbcBlocks(c cipher.Block, x *[16]byte, data []byte) {
	for len(data) > 0 {
		n := min(len(data), blockSize)
		subtle.XORBytes(x[:n], x[:n], data[:n])
		c.Encrypt(x[:], x[:])
		data = data[n:]
	}
}

// ccmCTR XORs data with the CCM key stream starting at counter 1, and
// returns the key stream block of counter 0 (which masks the tag).
func ccmCTR(c cipher.Block, nonce, dst, src []byte) [16]byte {
	var a, s [16]byte
	a[0] = 15 - ccmNonceLen - 1
	copy(a[1:], nonce)
	var s0 [16]byte
	c.Encrypt(s0[:], a[:])
	for i, ctr := 0, uint16(1); i < len(src); i, ctr = i+blockSize, ctr+1 {
		binary.BigEndian.PutUint16(a[14:], ctr)
		c.Encrypt(s[:], a[:])
		n := min(blockSize, len(src)-i)
		subtle.XORBytes(dst[i:i+n], src[i:i+n], s[:n])
	}
	return s0
}

// ccmSeal encrypts plaintext and returns the ciphertext followed by the
// 8-byte tag.
func ccmSeal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	if len(nonce) != ccmNonceLen || len(plaintext) > ccmMaxLen || len(aad) > ccmMaxAAD {
		return nil, errCCM
	}
	c := newAES(key)
	t := ccmMAC(c, nonce, aad, plaintext)
	out := make([]byte, len(plaintext)+ccmTagLen)
	s0 := ccmCTR(c, nonce, out, plaintext)
	subtle.XORBytes(out[len(plaintext):], t[:ccmTagLen], s0[:ccmTagLen])
	return out, nil
}

// ccmOpen decrypts ciphertext (without the tag) and checks tag; ok is
// false when the message is not authentic.
func ccmOpen(key, nonce, aad, ciphertext, tag []byte) (plaintext []byte, ok bool) {
	if len(nonce) != ccmNonceLen || len(tag) != ccmTagLen || len(ciphertext) > ccmMaxLen || len(aad) > ccmMaxAAD {
		return nil, false
	}
	c := newAES(key)
	pt := make([]byte, len(ciphertext))
	s0 := ccmCTR(c, nonce, pt, ciphertext)
	t := ccmMAC(c, nonce, aad, pt)
	var want [ccmTagLen]byte
	subtle.XORBytes(want[:], t[:ccmTagLen], s0[:ccmTagLen])
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return nil, false
	}
	return pt, true
}

// ctrDRBG is CTR_DRBG with AES-128 and no derivation function (NIST SP
// 800-90A §10.2.1), as S2 uses it to generate the nonces of one node
// pair. The reseed counter is not kept: a SPAN lives for a few messages.
type ctrDRBG struct {
	key, v [16]byte
}

// newCTRDRBG instantiates the generator with 32 bytes of entropy and a
// personalization string of at most 32 bytes.
func newCTRDRBG(entropy [32]byte, pers []byte) *ctrDRBG {
	seed := entropy
	subtle.XORBytes(seed[:len(pers)], seed[:len(pers)], pers)
	d := &ctrDRBG{}
	d.update(&seed)
	return d
}

func incr(v *[16]byte) {
	for i := 15; i >= 0; i-- {
		v[i]++
		if v[i] != 0 {
			return
		}
	}
}

// update is CTR_DRBG_Update with provided data (nil: zeros).
func (d *ctrDRBG) update(provided *[32]byte) {
	c := newAES(d.key[:])
	var temp [32]byte
	for i := 0; i < 32; i += blockSize {
		incr(&d.v)
		c.Encrypt(temp[i:i+blockSize], d.v[:])
	}
	if provided != nil {
		subtle.XORBytes(temp[:], temp[:], provided[:])
	}
	copy(d.key[:], temp[:16])
	copy(d.v[:], temp[16:])
}

// generate returns n pseudo-random bytes.
func (d *ctrDRBG) generate(n int) []byte {
	c := newAES(d.key[:])
	out := make([]byte, (n+blockSize-1)/blockSize*blockSize)
	for i := 0; i < len(out); i += blockSize {
		incr(&d.v)
		c.Encrypt(out[i:i+blockSize], d.v[:])
	}
	d.update(nil)
	return out[:n]
}

// s2Keys are what an S2 network key (or a temporary key) expands to.
type s2Keys struct {
	ccm  [16]byte // encrypts and authenticates (CCM)
	pers [32]byte // personalization string of the nonce generator
	mpan [16]byte // multicast nonces (not used by the driver)
}

// Constants of the S2 key derivation functions (CKDF).
var (
	ckdfConstPRK   = repeat(0x33, 16)
	ckdfConstTE    = repeat(0x88, 15)
	ckdfConstNK    = repeat(0x55, 15)
	ckdfConstNonce = repeat(0x26, 16)
	ckdfConstEI    = repeat(0x88, 15)
)

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// expandNetworkKey is CKDF-NetworkKey-Expand: a permanent network key
// (PNK) to its CCM key, personalization string and MPAN key.
func expandNetworkKey(pnk []byte) s2Keys {
	t1 := cmac(pnk, cat(ckdfConstNK, []byte{1}))
	t2 := cmac(pnk, cat(t1[:], ckdfConstNK, []byte{2}))
	t3 := cmac(pnk, cat(t2[:], ckdfConstNK, []byte{3}))
	t4 := cmac(pnk, cat(t3[:], ckdfConstNK, []byte{4}))
	var k s2Keys
	k.ccm = t1
	copy(k.pers[:16], t2[:])
	copy(k.pers[16:], t3[:])
	k.mpan = t4
	return k
}

// tempPRK is CKDF-TempExtract: the pseudo-random key of the key exchange
// from the ECDH shared secret and both public keys (including node's
// first).
func tempPRK(shared, pubIncluding, pubJoining []byte) [16]byte {
	return cmac(ckdfConstPRK, cat(shared, pubIncluding, pubJoining))
}

// expandTempKey is CKDF-TempExpand: the temporary keys that protect the
// key exchange.
func expandTempKey(prk [16]byte) s2Keys {
	t1 := cmac(prk[:], cat(ckdfConstTE, []byte{1}))
	t2 := cmac(prk[:], cat(t1[:], ckdfConstTE, []byte{2}))
	t3 := cmac(prk[:], cat(t2[:], ckdfConstTE, []byte{3}))
	var k s2Keys
	k.ccm = t1
	copy(k.pers[:16], t2[:])
	copy(k.pers[16:], t3[:])
	return k
}

// mixedEntropy is CKDF-MEI-Extract and -Expand: the entropy that seeds a
// SPAN, from the sender's and the receiver's entropy inputs.
func mixedEntropy(sei, rei []byte) [32]byte {
	prk := cmac(ckdfConstNonce, cat(sei, rei))
	t1 := cmac(prk[:], cat(ckdfConstEI, []byte{0}, ckdfConstEI, []byte{1}))
	t2 := cmac(prk[:], cat(t1[:], ckdfConstEI, []byte{2}))
	var mei [32]byte
	copy(mei[:16], t1[:])
	copy(mei[16:], t2[:])
	return mei
}

// newSPAN returns the nonce generator of a node pair.
func newSPAN(k *s2Keys, sei, rei []byte) *ctrDRBG {
	return newCTRDRBG(mixedEntropy(sei, rei), k.pers[:])
}

// s0Keys derives the S0 authentication and encryption keys from the S0
// network key.
func s0Keys(networkKey []byte) (auth, enc [16]byte) {
	c := newAES(networkKey)
	c.Encrypt(auth[:], repeat(0x55, 16))
	c.Encrypt(enc[:], repeat(0xAA, 16))
	return auth, enc
}

// ofb XORs src with the AES-OFB key stream of key and iv into dst.
func ofb(key, iv, dst, src []byte) {
	c := newAES(key)
	var s [16]byte
	copy(s[:], iv)
	for i := 0; i < len(src); i += blockSize {
		c.Encrypt(s[:], s[:])
		n := min(blockSize, len(src)-i)
		subtle.XORBytes(dst[i:i+n], src[i:i+n], s[:n])
	}
}

// cbcMAC8 is the S0 message authentication code: AES-CBC with a zero IV
// over data (zero padded), the first 8 bytes of the last block.
func cbcMAC8(key, data []byte) [8]byte {
	c := newAES(key)
	var x [16]byte
	cbcBlocks(c, &x, data)
	var out [8]byte
	copy(out[:], x[:8])
	return out
}

// formatDSK writes the first 16 bytes of a public key as a DSK: eight
// groups of five decimal digits, each a big-endian 16-bit number. The
// first group is the node's PIN.
func formatDSK(pub []byte) string {
	var b []byte
	for i := 0; i+1 < 16 && i+1 < len(pub); i += 2 {
		if i > 0 {
			b = append(b, '-')
		}
		b = fmt.Appendf(b, "%05d", binary.BigEndian.Uint16(pub[i:]))
	}
	return string(b)
}
