package zwave

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// fuzzConnector is a connector with keys and node records but no stick:
// receive runs without I/O (answers wait in the controller's queue).
func fuzzConnector(t testing.TB) (*Connector, *controller) {
	t.Helper()
	set, _ := json.Marshal(map[string]any{"port": "/dev/null"})
	cc, err := New(core.ConnectorConfig{Name: "fuzz", Type: "zwave", Settings: set, StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c := cc.(*Connector)
	must(t, c.store.useNetwork(0xC0FFEE01), "records")
	must(t, c.keys(), "keys")
	c.sec.session(1, 0xC0FFEE01)
	must(t, c.store.update(10, func(r *nodeRecord) { r.Security, r.SecureCCs = []string{"s2_access_control"}, []int{0x62} }), "record")
	must(t, c.store.update(12, func(r *nodeRecord) { r.Security, r.SecureCCs = []string{"s0"}, []int{0x25} }), "record")
	ctl := newController(slog.New(slog.DiscardHandler))
	port := &silentPort{closed: make(chan struct{})}
	ctl.link = newLink(port, ctl.log, func(frame) {})
	t.Cleanup(func() { ctl.close() })
	return c, ctl
}

// silentPort is a stick that takes every byte and never answers.
type silentPort struct{ closed chan struct{} }

func (p *silentPort) Read([]byte) (int, error) {
	<-p.closed
	return 0, io.EOF
}
func (p *silentPort) Write(b []byte) (int, error) { return len(b), nil }
func (p *silentPort) Close() error {
	close(p.closed)
	return nil
}

// droppedTotal sums osgate_zwave_frames_dropped_total of a connector.
func droppedTotal(connector string) float64 {
	var sum float64
	for _, r := range []string{"decrypt", "no_nonce", "duplicate", "insecure", "crc", "transport", "malformed", "no_keys", "s2", "reply_queue"} {
		sum += framesDropped.WithLabelValues(connector, r).Value()
	}
	return sum
}

// peerNode plays a secure node with the driver's own S2 code, to make
// well-formed seeds: frames the receiver can decrypt.
func s2Seeds(t testing.TB, c *Connector) [][]byte {
	node := newSecurity()
	node.session(10, 0xC0FFEE01)
	k, _ := c.store.loadKeys(false)
	node.setKeys(k)
	// The driver's entropy reaches the node, the node starts a SPAN.
	rep := c.sec.s2NonceReport(10)
	if _, err := node.s2OnNonceReport(1, rep[2:]); err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, cmd := range [][]byte{{0x62, 0x03, 0xFF, 0x00, 0x00, 0xFE, 0xFE}, {0x6C, 0x01, 0x05, 0x03, 0x62, 0x03, 0x00}, {0x62, 0x03, 0x00}} {
		node.mu.Lock()
		node.own = 10
		node.mu.Unlock()
		b, err := node.s2WrapTo(1, secS2AC, cmd)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// s2WrapTo is s2Wrap from the node's side (the peer is the controller).
func (s *security) s2WrapTo(peer byte, c secClass, cmd []byte) ([]byte, error) {
	return s.s2Wrap(peer, c, cmd)
}

// FuzzReceive: whatever a node sends, the receive pipeline never panics,
// and a secure frame it cannot use is counted.
func FuzzReceive(f *testing.F) {
	c, ctl := fuzzConnector(f)
	for _, s := range s2Seeds(f, c) {
		f.Add(byte(10), s)
	}
	for _, s := range []string{
		"9F 01 05", "9F 02 06 01 00112233445566778899AABBCCDDEEFF", "9F 03 07 01 12 41 00112233445566778899AABBCCDDEEFF 0102 0102030405060708",
		"98 40", "98 80 0102030405060708", "98 81 0102030405060708 AABBCC 01 0102030405060708",
		"6C 01 85 03 31 05 01", "56 01 31 05 01 22 00 C9 00 00", "55 C0 05 10 31 05 01 00 00",
		"55 E0 05 10 03 22 00 00 00", "60 0D 02 01 6C 01 01 03 25 03 FF", "84 07", "84 06 00 0E 10 01", "5A 01",
		"62 03 00", "25 03 FF", "00",
	} {
		f.Add(byte(10), unhex(f, s))
		f.Add(byte(12), unhex(f, s))
		f.Add(byte(4), unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, node byte, cmd []byte) {
		if node == 0 || node == 1 {
			node = 10
		}
		before := droppedTotal("fuzz")
		readings := len(c.readings)
		c.receive(ctl, node, bytes.Clone(cmd), time.Now())
		// Drain what the pipeline produced so the queues never fill.
		for len(c.readings) > 0 {
			<-c.readings
		}
		for len(ctl.replies) > 0 {
			<-ctl.replies
		}
		secure := len(cmd) >= 2 && ((cmd[0] == ccSecurity2 && cmd[1] == s2Encap) || (cmd[0] == ccSecurity0 && (cmd[1] == s0Encap || cmd[1] == s0EncapNonceGet)))
		if secure && droppedTotal("fuzz") == before && readings == 0 && !c.usedSecure(node) {
			t.Fatalf("secure frame % X from node %d neither used nor counted", cmd, node)
		}
	})
}

// usedSecure reports whether the last secure frame of a node decrypted
// (its SPAN runs); the fuzz test accepts a frame that decrypted and
// carried nothing the driver exports.
func (c *Connector) usedSecure(node byte) bool {
	c.sec.mu.Lock()
	defer c.sec.mu.Unlock()
	return c.sec.peer(node).state == spanReady
}

// FuzzS2Unwrap: decryption of arbitrary S2 payloads never panics, and
// only an untouched frame decrypts.
func FuzzS2Unwrap(f *testing.F) {
	c, _ := fuzzConnector(f)
	seeds := s2Seeds(f, c)
	for _, s := range seeds {
		f.Add(s[2:], uint8(0))
	}
	f.Fuzz(func(t *testing.T, p []byte, state uint8) {
		sec := newSecurity()
		k, _ := c.store.loadKeys(false)
		sec.setKeys(k)
		sec.session(1, 0xC0FFEE01)
		pr := sec.peer(10)
		pr.state = spanState(state % 4)
		if pr.state == spanReady {
			pr.span, pr.class = newSPAN(sec.s2[secS2AC], make([]byte, 16), make([]byte, 16)), secS2AC
		}
		inner, cl, err := sec.s2Unwrap(10, p, []secClass{secS2AC, secS2Auth})
		if err == nil && (cl != secS2AC && cl != secS2Auth) {
			t.Fatalf("decrypted with class %v from % X", cl, p)
		}
		if err != nil && inner != nil {
			t.Fatalf("plaintext % X with error %v", inner, err)
		}
	})
}

// FuzzS0Unwrap: S0 decryption of arbitrary payloads never panics; a
// frame naming no nonce we handed out is refused.
func FuzzS0Unwrap(f *testing.F) {
	c, _ := fuzzConnector(f)
	f.Add(unhex(f, "0102030405060708 AABBCC 01 0102030405060708"), true)
	f.Add(make([]byte, 18), false)
	f.Fuzz(func(t *testing.T, p []byte, nonce bool) {
		if nonce && len(p) >= 9 {
			rep := c.sec.s0NonceReport(12)
			p = bytes.Clone(p)
			p[len(p)-9] = rep[2] // the id of the nonce we handed out
		}
		inner, err := c.sec.s0Unwrap(12, s0Encap, p)
		if err != nil && inner != nil {
			t.Fatalf("plaintext with error %v", err)
		}
	})
}

// FuzzTransportService: segments in any order and shape never panic, and
// the sessions stay bounded.
func FuzzTransportService(f *testing.F) {
	c, ctl := fuzzConnector(f)
	dg := []byte{0x31, 0x05, 0x03, 0x0A, 0x04, 0xD2}
	first := tsSegment(tsFirst, 1, len(dg), 0, dg[:3])
	next := tsSegment(tsSubsequent, 1, len(dg), 3, dg[3:])
	f.Add(first, next, byte(5))
	f.Add(next, first, byte(6))
	f.Add([]byte{0x55, 0xC0, 0xFF}, []byte{0x55, 0xE8, 0x10}, byte(7))
	f.Fuzz(func(t *testing.T, a, b []byte, node byte) {
		for _, seg := range [][]byte{a, b} {
			if len(seg) < 2 {
				continue
			}
			seg = bytes.Clone(seg)
			seg[0] = ccTransportService
			out, err := c.ts.feed(c, ctl, rxMsg{node: node, cmd: seg, at: time.Now()})
			if err != nil && out != nil {
				t.Fatalf("datagram with error %v", err)
			}
			if len(out) > 0x7FF {
				t.Fatalf("datagram of %d bytes", len(out))
			}
		}
		c.ts.mu.Lock()
		n := len(c.ts.sessions)
		c.ts.mu.Unlock()
		if n > tsMaxSessions {
			t.Fatalf("%d transport sessions", n)
		}
		for len(ctl.replies) > 0 {
			<-ctl.replies
		}
	})
}

// tsSegment builds a Transport Service segment with its CRC.
func tsSegment(kind byte, session, size, offset int, payload []byte) []byte {
	b := []byte{ccTransportService, kind | byte(size>>8)&0x07, byte(size)}
	if kind == tsFirst {
		b = append(b, byte(session<<4))
	} else {
		b = append(b, byte(session<<4)|byte(offset>>8)&0x07, byte(offset))
	}
	b = append(b, payload...)
	crc := crc16(b)
	return append(b, byte(crc>>8), byte(crc))
}

// FuzzCommissioningParsers: the reports of commissioning and the files
// of the store never panic their parsers; a keys file's error never
// carries its content.
func FuzzCommissioningParsers(f *testing.F) {
	for _, s := range []string{"70 06 01 01 2A", "70 06 02 02 FE 0C", "86 12 03 07 00 01 0C 01", "72 05 00 86 00 03 00 60",
		"5E 02 02 05 00 00 00 00 00", "56 01 31 05 01 22 00 C9 8A 4D", "9F 05 00 02 01 84"} {
		f.Add(unhex(f, s))
	}
	f.Add([]byte(`{"s0":"00112233445566778899aabbccddeeff","s2_unauthenticated":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var iv Interview
		parseManufacturer(b, &iv)
		parseVersion(b, &iv)
		parseZWavePlus(b, &iv)
		parseConfigReport(b)
		unwrapCRC16(b)
		parseS2Extensions(b, false)
		parseS2Extensions(b, true)
		if len(b) >= 2 {
			tsHeader(b)
		}
		classesOfMask(func() byte {
			if len(b) > 0 {
				return b[0]
			}
			return 0
		}())
		if _, err := parseKeys(b); err != nil {
			// Only the field names may show, never a value.
			var raw map[string]string
			if json.Unmarshal(b, &raw) == nil {
				for _, v := range raw {
					if len(v) >= 8 && strings.Contains(err.Error(), v) {
						t.Fatalf("keys error %q shows a value", err)
					}
				}
			}
		}
	})
}

func TestCRC16(t *testing.T) {
	// CRC-CCITT with start 0x1D0F over "123456789" is 0xE5CC (the AUG-CCITT
	// check value), the variant Z-Wave uses.
	if got := crc16([]byte("123456789")); got != 0xE5CC {
		t.Fatalf("crc16 = 0x%04X, want 0xE5CC", got)
	}
	frame := unhex(t, "56 01 31 05 01 22 00 C9")
	crc := crc16(frame)
	frame = append(frame, byte(crc>>8), byte(crc))
	inner, err := unwrapCRC16(frame)
	if err != nil || hex.EncodeToString(inner) != "3105012200c9" {
		t.Fatalf("unwrap: % X, %v", inner, err)
	}
	frame[3] ^= 0x01
	if _, err := unwrapCRC16(frame); err == nil {
		t.Fatal("a damaged CRC-16 frame was accepted")
	}
}
