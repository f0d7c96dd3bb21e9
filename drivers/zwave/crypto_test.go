package zwave

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/osgate/osgate/internal/testpeer"
)

// RFC 4493 §4: AES-CMAC examples.
func TestCMACVectors(t *testing.T) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		got := cmac(key, msg[:c.n])
		if hex.EncodeToString(got[:]) != c.want {
			t.Errorf("CMAC of %d bytes = %x, want %s", c.n, got, c.want)
		}
	}
}

// RFC 3610 §8, packet vector #1: 13-byte nonce, 8 bytes of header (the
// AAD), 8-byte tag, as S2 uses CCM.
func TestCCMVector(t *testing.T) {
	key := unhex(t, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
	nonce := unhex(t, "00000003020100a0a1a2a3a4a5")
	pkt := make([]byte, 31)
	for i := range pkt {
		pkt[i] = byte(i)
	}
	aad, pt := pkt[:8], pkt[8:]
	want := unhex(t, "588c979a61c663d2f066d0c2c0f989806d5f6b61dac384 17e8d12cfdf926e0")
	got, err := ccmSeal(key, nonce, aad, pt)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("seal = %x, %v; want %x", got, err, want)
	}
	back, ok := ccmOpen(key, nonce, aad, got[:len(pt)], got[len(pt):])
	if !ok || !bytes.Equal(back, pt) {
		t.Fatalf("open = %x, %v", back, ok)
	}
	// Any changed bit of ciphertext, tag, nonce or AAD is refused.
	for i := range got {
		bad := bytes.Clone(got)
		bad[i] ^= 0x01
		if _, ok := ccmOpen(key, nonce, aad, bad[:len(pt)], bad[len(pt):]); ok {
			t.Fatalf("a flipped bit %d was accepted", i)
		}
	}
	badAAD := bytes.Clone(aad)
	badAAD[0] ^= 0x80
	if _, ok := ccmOpen(key, nonce, badAAD, got[:len(pt)], got[len(pt):]); ok {
		t.Fatal("a changed AAD was accepted")
	}
	if _, ok := ccmOpen(key, nonce[:12], aad, got[:len(pt)], got[len(pt):]); ok {
		t.Fatal("a short nonce was accepted")
	}
}

// NIST SP 800-38A F.4.1: OFB-AES128 (the S0 cipher).
func TestOFBVector(t *testing.T) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	iv := unhex(t, "000102030405060708090a0b0c0d0e0f")
	pt := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
	want := unhex(t, "3b3fd92eb72dad20333449f8e83cfb4a7789508d16918f03f53c52dac54ed825")
	got := make([]byte, len(pt))
	ofb(key, iv, got, pt)
	if !bytes.Equal(got, want) {
		t.Fatalf("OFB = %x, want %x", got, want)
	}
	// A partial last block (S0 payloads are seldom whole blocks).
	ofb(key, iv, got[:20], pt[:20])
	if !bytes.Equal(got[:20], want[:20]) {
		t.Fatalf("OFB of 20 bytes = %x", got[:20])
	}
}

// The S2 key derivations, the nonce generator, CCM and the S0 primitives
// agree with zwave-js's implementation (the mock's), for random inputs.
func TestCryptoAgainstZWaveJS(t *testing.T) {
	node := testpeer.LookPath(t, "node", "nodejs (Node.js >= 20)")
	script, err := filepath.Abs("testdata/mock/crypto-check.cjs")
	must(t, err, "script path")
	if _, err := os.Stat("testdata/mock/node_modules/zwave-js"); err != nil {
		t.Fatalf("zwave-js missing (%v): install it with: %s", err, mockInstall)
	}
	for round := 0; round < 3; round++ {
		in := map[string][]byte{
			"key": rnd(16), "msg": rnd(round * 23), "pnk": rnd(16),
			"priv_a": rnd(32), "priv_b": rnd(32), "sei": rnd(16), "rei": rnd(16),
			"plain": rnd(5 + round*17), "nonce": rnd(13), "aad": rnd(20 + round), "iv": rnd(16),
		}
		enc := map[string]string{}
		for k, v := range in {
			enc[k] = hex.EncodeToString(v)
		}
		body, _ := json.Marshal(enc)
		cmd := exec.Command(node, script)
		cmd.Stdin = bytes.NewReader(body)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		outb, err := cmd.Output()
		if err != nil {
			t.Fatalf("crypto-check.cjs: %v\n%s", err, stderr.String())
		}
		var js struct {
			CMAC   string   `json:"cmac"`
			NKCCM  string   `json:"nk_ccm"`
			NKPers string   `json:"nk_pers"`
			NKMPAN string   `json:"nk_mpan"`
			PubA   string   `json:"pub_a"`
			PubB   string   `json:"pub_b"`
			Shared string   `json:"shared"`
			PRK    string   `json:"prk"`
			TKCCM  string   `json:"tk_ccm"`
			TKPers string   `json:"tk_pers"`
			DSK    string   `json:"dsk"`
			MEI    string   `json:"mei"`
			CCM    string   `json:"ccm"`
			S0Auth string   `json:"s0_auth"`
			S0Enc  string   `json:"s0_enc"`
			S0OFB  string   `json:"s0_ofb"`
			S0MAC  string   `json:"s0_mac"`
			Nonces []string `json:"nonces"`
		}
		if err := json.Unmarshal(outb, &js); err != nil || len(js.Nonces) != 3 {
			t.Fatalf("crypto-check.cjs output %q: %v", outb, err)
		}

		check := func(what string, got []byte, want string) {
			t.Helper()
			if hex.EncodeToString(got) != want {
				t.Errorf("round %d: %s = %x, zwave-js says %s", round, what, got, want)
			}
		}
		c := cmac(in["key"], in["msg"])
		check("CMAC", c[:], js.CMAC)
		nk := expandNetworkKey(in["pnk"])
		check("network CCM key", nk.ccm[:], js.NKCCM)
		check("network personalization", nk.pers[:], js.NKPers)
		check("network MPAN key", nk.mpan[:], js.NKMPAN)

		a, err := ecdh.X25519().NewPrivateKey(in["priv_a"])
		must(t, err, "X25519 key")
		b, err := ecdh.X25519().NewPrivateKey(in["priv_b"])
		must(t, err, "X25519 key")
		check("public key A", a.PublicKey().Bytes(), js.PubA)
		check("public key B", b.PublicKey().Bytes(), js.PubB)
		shared, err := a.ECDH(b.PublicKey())
		must(t, err, "ECDH")
		check("shared secret", shared, js.Shared)
		prk := tempPRK(shared, a.PublicKey().Bytes(), b.PublicKey().Bytes())
		check("PRK", prk[:], js.PRK)
		tk := expandTempKey(prk)
		check("temp CCM key", tk.ccm[:], js.TKCCM)
		check("temp personalization", tk.pers[:], js.TKPers)
		if got := formatDSK(b.PublicKey().Bytes()); got != js.DSK {
			t.Errorf("DSK %s, zwave-js says %s", got, js.DSK)
		}

		mei := mixedEntropy(in["sei"], in["rei"])
		check("MEI", mei[:], js.MEI)
		span := newSPAN(&nk, in["sei"], in["rei"])
		for i, want := range js.Nonces {
			check(fmt.Sprintf("nonce %d", i), span.generate(16)[:13], want)
		}
		sealed, err := ccmSeal(nk.ccm[:], in["nonce"], in["aad"], in["plain"])
		must(t, err, "seal")
		check("CCM", sealed, js.CCM)

		auth, encK := s0Keys(in["pnk"])
		check("S0 auth key", auth[:], js.S0Auth)
		check("S0 encryption key", encK[:], js.S0Enc)
		o := make([]byte, len(in["plain"]))
		ofb(encK[:], in["iv"], o, in["plain"])
		check("S0 OFB", o, js.S0OFB)
		mac := cbcMAC8(auth[:], in["aad"])
		check("S0 MAC", mac[:], js.S0MAC)
	}
}

func rnd(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func BenchmarkCCMOpen(b *testing.B) {
	key, nonce, aad := rnd(16), rnd(13), rnd(12)
	sealed, _ := ccmSeal(key, nonce, aad, rnd(20))
	for b.Loop() {
		if _, ok := ccmOpen(key, nonce, aad, sealed[:20], sealed[20:]); !ok {
			b.Fatal("not authentic")
		}
	}
}
