package zwave

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

// newLoggedConnector is newTestConnectorIn whose log (debug level) also
// goes to w, so that a test can check what it says.
func newLoggedConnector(t *testing.T, tty, stateDir string, w io.Writer, devs ...*core.Device) *Connector {
	t.Helper()
	set, _ := json.Marshal(map[string]any{"port": tty, "report_timeout": "10s", "dead_backoff": "30s"})
	h := slog.NewTextHandler(io.MultiWriter(os.Stderr, w), &slog.HandlerOptions{Level: slog.LevelDebug})
	c, err := New(core.ConnectorConfig{Name: "zw", Type: "zwave", Settings: set, Devices: devs, StateDir: stateDir, Logger: slog.New(h)})
	must(t, err, "New")
	t.Cleanup(func() { c.(*Connector).Close() })
	return c.(*Connector)
}

// dropped reads osgate_zwave_frames_dropped_total of connector "zw".
func dropped(reason string) float64 {
	return framesDropped.WithLabelValues("zw", reason).Value()
}

// mockDSK reads the DSK of a pending node from the mock's log.
func mockDSK(t *testing.T, m *mockPeer, node int) string {
	return m.loggedDSK(t, "pending", node)
}

// loggedDSK waits for the mock to log the DSK of a node it keeps as kind
// ("pending" for inclusion, "smartstart" for SmartStart), and returns it.
func (m *mockPeer) loggedDSK(t *testing.T, kind string, node int) string {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`%s node %d \(\w+\) DSK ([0-9-]{47})`, kind, node))
	var dsk string
	waitFor(t, 10*time.Second, fmt.Sprintf("DSK of %s node %d in the mock log", kind, node), func() bool {
		if mm := re.FindStringSubmatch(m.log.String()); mm != nil {
			dsk = mm[1]
		}
		return dsk != ""
	})
	return dsk
}

// received lists what the mock says node got, in order.
func received(m *mockPeer, node int) []string {
	var out []string
	prefix := fmt.Sprintf("[mock] node %d received ", node)
	for _, l := range strings.Split(m.log.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.TrimPrefix(l, prefix))
		}
	}
	return out
}

func include(t *testing.T, c *Connector, params string) (JoinResult, error) {
	t.Helper()
	res, err := c.Commands()["include"].Run(testCtx(t, 2*time.Minute), json.RawMessage(params))
	if err != nil {
		return JoinResult{}, err
	}
	return res.(JoinResult), nil
}

func nodeStatus(t *testing.T, c *Connector, id int) NodeStatus {
	t.Helper()
	res, err := c.Commands()["nodes"].Run(testCtx(t, 2*time.Minute), nil)
	must(t, err, "nodes")
	for _, n := range res.([]NodeStatus) {
		if n.NodeID == id {
			return n
		}
	}
	t.Fatalf("node %d not listed: %+v", id, res)
	return NodeStatus{}
}

// TestSecureInclusion includes nodes into a network whose keys do not
// exist yet: a lock with a wrong PIN (refused, no key sent), the same
// kind of lock with the right PIN (S2 Access Control, then written), a
// sensor that asks for S2 Authenticated without a PIN (refused) and with
// a downgrade (S2 Unauthenticated), and an S0 relay.
func TestSecureInclusion(t *testing.T) {
	m := startMock(t, "ZW_PENDING=20:lock,21:lock,22:sensor,23:sensor,24:s0relay")
	tty := startPTY(t, m.addr)
	state := t.TempDir()
	var logs testpeer.Buffer
	lock := dev("front-door", 21, 0, "lock")
	lock.Channels[0].Writable = true
	sensor := dev("cellar", 23, 0, "air_temperature")
	relay := dev("s0-relay", 24, 0, "switch")
	c := newLoggedConnector(t, tty, state, &logs, lock, sensor, relay)
	keysPath := filepath.Join(state, "zwave", "zw", keysFile)
	if _, err := os.Stat(keysPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("keys exist before the first use: %v", err)
	}
	var results []string // every answer, to check no key is in one

	t.Run("wrong PIN refused, nothing half-included", func(t *testing.T) {
		dsk := mockDSK(t, m, 20)
		right, _ := strconv.Atoi(dsk[:5])
		wrong := fmt.Sprintf("%05d", (right+1)%65536)
		_, err := include(t, c, `{"timeout": "30s", "security": "s2", "pin": "`+wrong+`"}`)
		if !errors.Is(err, errKEX) || !strings.Contains(err.Error(), "PIN "+wrong+" does not match") {
			t.Fatalf("include with a wrong PIN: %v", err)
		}
		results = append(results, err.Error())
		// The keys were made (before the node joined) and are the owner's only.
		fi, err := os.Stat(keysPath)
		must(t, err, "keys file")
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("keys file mode %v, want 0600", fi.Mode().Perm())
		}
		if di, err := os.Stat(filepath.Dir(keysPath)); err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("keys dir: %v %v, want 0700", di.Mode().Perm(), err)
		}
		// The node got nothing encrypted: no key, not even a KEX echo.
		waitFor(t, 10*time.Second, "the node got KEX Fail", func() bool {
			got := received(m, 20)
			return len(got) > 0 && got[len(got)-1] == "Security2CCKEXFail"
		})
		for _, r := range received(m, 20) {
			switch r {
			case "Security2CCKEXGet", "Security2CCKEXSet", "Security2CCPublicKeyReport", "Security2CCNonceReport", "Security2CCKEXFail":
			default:
				t.Errorf("node 20 received %s after a wrong PIN", r)
			}
		}
		n := nodeStatus(t, c, 20)
		if n.Security != "none" || len(n.SecurityClasses) != 0 || !strings.Contains(n.SecurityError, "PIN") {
			t.Fatalf("node 20 after a refused inclusion: %+v", n)
		}
	})

	t.Run("right PIN: S2 Access Control", func(t *testing.T) {
		dsk := mockDSK(t, m, 21)
		jr, err := include(t, c, `{"timeout": "30s", "security": "s2", "pin": "`+dsk[:5]+`"}`)
		must(t, err, "include")
		b, _ := json.Marshal(jr)
		results = append(results, string(b))
		// The PIN authenticates the node: answers show the DSK without it.
		masked := "*****" + dsk[5:]
		if jr.NodeID != 21 || fmt.Sprint(jr.Security) != "[s2_access_control]" || jr.DSK != masked || !strings.HasPrefix(jr.Status, "included") {
			t.Fatalf("include: %+v, want node 21 with s2_access_control and DSK %s", jr, masked)
		}
		if jr.Interview == nil || jr.Interview.Firmware == "" {
			t.Errorf("no interview after inclusion: %+v", jr.Interview)
		}
		n := nodeStatus(t, c, 21)
		if n.Security != "s2_access_control" || !contains(n.SecureCCs, "door_lock") || n.DSK != masked {
			t.Fatalf("node 21: %+v, want DSK %s", n, masked)
		}
		if strings.Contains(logs.String(), dsk[:11]) {
			t.Errorf("the gateway logged node 21's DSK with its PIN")
		}
		walkFiles(t, state, func(path string, b []byte) {
			if strings.Contains(string(b), dsk[:11]) {
				t.Errorf("%s holds node 21's DSK with its PIN", path)
			}
		})
		for _, on := range []bool{true, false, true} {
			must(t, c.Write(testCtx(t, time.Minute), lock, "lock", on), "write lock %v", on)
			if r := pollOne(t, c, lock, "lock"); r.Value != on {
				t.Fatalf("lock reads %v after writing %v", r.Value, on)
			}
		}
		want := "Security2CCMessageEncapsulation[S2_AccessControl] > SupervisionCCGet > DoorLockCCOperationSet"
		if !contains(received(m, 21), want) {
			t.Fatalf("the lock never got %q; it got %v", want, received(m, 21))
		}
	})

	t.Run("authenticated class without a PIN refused", func(t *testing.T) {
		_, err := include(t, c, `{"timeout": "30s"}`)
		if !errors.Is(err, errKEX) || !strings.Contains(err.Error(), `give "pin"`) {
			t.Fatalf("include without a PIN: %v", err)
		}
		for _, r := range received(m, 22) {
			if strings.Contains(r, "NetworkKey") {
				t.Errorf("node 22 received %s", r)
			}
		}
	})

	t.Run("downgrade to S2 Unauthenticated", func(t *testing.T) {
		jr, err := include(t, c, `{"timeout": "30s", "downgrade": true}`)
		must(t, err, "include")
		if jr.NodeID != 23 || fmt.Sprint(jr.Security) != "[s2_unauthenticated]" {
			t.Fatalf("include with downgrade: %+v", jr)
		}
		if r := pollOne(t, c, sensor, "air_temperature"); r.Value != 21.5 {
			t.Fatalf("air_temperature %+v", r)
		}
		if !contains(received(m, 23), "Security2CCMessageEncapsulation[S2_Unauthenticated] > MultilevelSensorCCGet") {
			t.Fatalf("node 23 got %v", received(m, 23))
		}
	})

	t.Run("S0", func(t *testing.T) {
		jr, err := include(t, c, `{"timeout": "30s"}`)
		must(t, err, "include")
		if jr.NodeID != 24 || fmt.Sprint(jr.Security) != "[s0]" {
			t.Fatalf("include of an S0 node: %+v", jr)
		}
		for _, on := range []bool{true, false} {
			must(t, c.Write(testCtx(t, time.Minute), relay, "switch", on), "write switch %v", on)
			if r := pollOne(t, c, relay, "switch"); r.Value != on {
				t.Fatalf("switch reads %v after writing %v", r.Value, on)
			}
		}
		if !contains(received(m, 24), "SecurityCCCommandEncapsulation > BinarySwitchCCSet") {
			t.Fatalf("node 24 got %v", received(m, 24))
		}
	})

	t.Run("keys exported with an admin key only, never logged", func(t *testing.T) {
		cmd := c.Commands()["keys"]
		if cmd.NeedScope() != scope.Admin {
			t.Fatalf("keys needs scope %v, want admin", cmd.NeedScope())
		}
		res, err := cmd.Run(testCtx(t, time.Minute), nil)
		must(t, err, "keys")
		b, err := os.ReadFile(keysPath)
		must(t, err, "read keys")
		var onDisk KeysExport
		must(t, json.Unmarshal(b, &onDisk), "keys.json")
		if res.(KeysExport) != onDisk || onDisk.S2AC == "" {
			t.Fatalf("export %+v, keys.json %+v", res, onDisk)
		}
		for name, k := range map[string]string{"s0": onDisk.S0, "s2_unauthenticated": onDisk.S2Unauth, "s2_authenticated": onDisk.S2Auth, "s2_access_control": onDisk.S2AC} {
			raw, _ := hex.DecodeString(k)
			for _, form := range []string{k, strings.ToUpper(k), fmt.Sprintf("% X", raw)} {
				if strings.Contains(logs.String(), form) {
					t.Errorf("the %s key is in the log", name)
				}
				for _, r := range results {
					if strings.Contains(r, form) {
						t.Errorf("the %s key is in an answer: %s", name, r)
					}
				}
			}
		}
	})
}

// writeNetwork writes the keys and node records a gateway would have
// after including the mock's secure nodes 10, 11 and 12, and returns the
// keys' JSON for the mock.
func writeNetwork(t *testing.T, state string) string {
	t.Helper()
	k := KeysExport{S0: hex.EncodeToString(rnd(16)), S2Unauth: hex.EncodeToString(rnd(16)), S2Auth: hex.EncodeToString(rnd(16)), S2AC: hex.EncodeToString(rnd(16))}
	kb, _ := json.Marshal(k)
	dir := filepath.Join(state, "zwave", "zw")
	must(t, writeFileAtomic(dir, keysFile, kb), "write keys")
	nodes := nodesFile{HomeID: "0xC0FFEE01", Nodes: map[string]*nodeRecord{
		"10": {Security: []string{"s2_access_control"}, SecureCCs: []int{0x62, 0x6C, 0x85, 0x72, 0x86}},
		"11": {Security: []string{"s2_authenticated"}, SecureCCs: []int{0x31}},
		"12": {Security: []string{"s0"}, SecureCCs: []int{0x25}},
	}}
	nb, _ := json.Marshal(nodes)
	must(t, writeFileAtomic(dir, "nodes-c0ffee01.json", nb), "write node records")
	return string(kb)
}

// TestSecureNetwork runs the driver with the keys of a network whose lock
// (S2 Access Control), sensor (S2 Authenticated) and relay (S0) were
// included before.
func TestSecureNetwork(t *testing.T) {
	state := t.TempDir()
	keys := writeNetwork(t, state)
	m := startMock(t, "ZW_KEYS="+keys, "ZW_SECURE_REPORT_MS=300", "ZW_S2_LOSE=3:7", "ZW_SPOOF=1")
	tty := startPTY(t, m.addr)
	lock := dev("front-door", 10, 0, "lock")
	lock.Channels[0].Writable = true
	sensor := dev("attic", 11, time.Hour, "air_temperature")
	relay := dev("porch", 12, 0, "switch")
	c := newTestConnectorIn(t, tty, state, lock, sensor, relay)
	insecure0 := dropped("insecure")
	decrypt0 := dropped("decrypt")
	k := listen(t, c)

	t.Run("encrypted reports exported, lost frames recovered", func(t *testing.T) {
		// Once polled, node 11 sends S2 reports; after the third it loses
		// seven frames on the air, more than the driver tries ahead: the
		// next one fails to decrypt (counted), the driver sends its nonce,
		// and the reports after it decrypt again.
		if r := pollOne(t, c, dev("attic", 11, time.Nanosecond, "air_temperature"), "air_temperature"); r.Value != 25.0 {
			t.Fatalf("poll of node 11: %+v", r)
		}
		waitFor(t, time.Minute, "a decryption failure after the lost frames", func() bool {
			return dropped("decrypt") > decrypt0
		})
		before := len(k.find("attic", "air_temperature"))
		if before < 3 {
			t.Fatalf("%d readings of the attic before the lost frames, want 3", before)
		}
		waitFor(t, time.Minute, "readings after the resynchronisation", func() bool {
			return len(k.find("attic", "air_temperature")) >= before+2
		})
		for _, r := range k.find("attic", "air_temperature") {
			if v := r.Value.(float64); v < 30 || v >= 40 || r.Unit != "°C" || r.Quality != core.Good {
				t.Fatalf("reading %+v, want 30..39 °C", r)
			}
		}
		if n := nodeStatus(t, c, 11); n.SecureFailures == 0 || n.Security != "s2_authenticated" {
			t.Fatalf("node 11: %+v", n)
		}
		if !strings.Contains(m.log.String(), "node 11 lost S2 frame") {
			t.Fatal("the mock lost no frame")
		}
	})

	t.Run("write to a lock via S2 Access Control", func(t *testing.T) {
		for _, on := range []bool{true, false, true} {
			must(t, c.Write(testCtx(t, time.Minute), lock, "lock", on), "write lock %v", on)
			if r := pollOne(t, c, lock, "lock"); r.Value != on {
				t.Fatalf("lock reads %v after writing %v", r.Value, on)
			}
		}
		want := "Security2CCMessageEncapsulation[S2_AccessControl] > SupervisionCCGet > DoorLockCCOperationSet"
		if !contains(received(m, 10), want) {
			t.Fatalf("the lock never got %q; it got %v", want, received(m, 10))
		}
	})

	t.Run("plain report of a secure lock dropped", func(t *testing.T) {
		// Node 10 keeps sending an "unlocked" report without security.
		waitFor(t, 30*time.Second, "insecure frames counted", func() bool {
			return dropped("insecure") > insecure0
		})
		if rs := k.find("front-door", "lock"); len(rs) > 0 {
			t.Fatalf("a plain report of the lock was exported: %+v", rs)
		}
	})

	t.Run("nonce desync recovered", func(t *testing.T) {
		// Our nonces run ten ahead of the lock's (as if ten of our frames
		// were lost on the air): the lock cannot decrypt the next Get,
		// says so with a nonce report, and the driver sends it again.
		pollOne(t, c, lock, "lock")
		c.sec.mu.Lock()
		p := c.sec.peer(10)
		if p.state != spanReady {
			c.sec.mu.Unlock()
			t.Fatalf("no SPAN with the lock: state %d", p.state)
		}
		for i := 0; i < 10; i++ {
			p.span.generate(16)
		}
		c.sec.mu.Unlock()
		invalid := strings.Count(m.log.String(), "node 10 received InvalidCC")
		if r := pollOne(t, c, lock, "lock"); r.Value != true {
			t.Fatalf("lock after the desync: %+v", r)
		}
		if strings.Count(m.log.String(), "node 10 received InvalidCC") <= invalid {
			t.Fatal("the lock decrypted a frame with nonces out of step: the test proves nothing")
		}
	})

	t.Run("S0 relay", func(t *testing.T) {
		for _, on := range []bool{true, false} {
			must(t, c.Write(testCtx(t, time.Minute), relay, "switch", on), "write switch %v", on)
			if r := pollOne(t, c, relay, "switch"); r.Value != on {
				t.Fatalf("switch reads %v after writing %v", r.Value, on)
			}
		}
		if !contains(received(m, 12), "SecurityCCCommandEncapsulation > BinarySwitchCCSet") {
			t.Fatalf("node 12 got %v", received(m, 12))
		}
	})

	t.Run("wrong keys file refused", func(t *testing.T) {
		dir := t.TempDir()
		must(t, writeFileAtomic(filepath.Join(dir, "zwave", "x"), keysFile, []byte(`{"s0": "00"}`)), "write")
		s := newStore(dir, "x", slog.New(slog.DiscardHandler))
		if _, err := s.loadKeys(true); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("a damaged keys file: %v", err)
		}
	})
}

// TestSleepingNode: a battery node's poll waits for its wake-up, is shown
// as pending, and is answered when the node wakes up; so is a new wake-up
// interval; the node is never marked dead.
func TestSleepingNode(t *testing.T) {
	m := startMock(t, "ZW_WAKEUP_MS=4000")
	tty := startPTY(t, m.addr)
	garden := dev("garden", 13, time.Nanosecond, "air_temperature", "battery")
	c := newTestConnector(t, tty, garden)
	k := listen(t, c)

	rs, err := c.Poll(testCtx(t, time.Minute), garden)
	if err != nil || len(rs) != 0 {
		t.Fatalf("poll of a sleeping node: %+v, %v; want nothing now", rs, err)
	}
	n := nodeStatus(t, c, 13)
	if !n.Sleeping || n.Dead || fmt.Sprint(n.Pending) != "[get air_temperature get battery]" {
		t.Fatalf("node 13 after a poll: %+v", n)
	}
	// A new interval waits for the wake-up too: the RPC says so when its
	// time is up first.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	res, err := c.Commands()["wake_up"].Run(short, json.RawMessage(`{"node": 13, "interval": "30m"}`))
	cancel()
	must(t, err, "wake_up")
	if wr := res.(WakeUpResult); !strings.HasPrefix(wr.Status, "queued") {
		t.Fatalf("wake_up on a sleeping node: %+v", wr)
	}
	waitFor(t, time.Minute, "the queued Get answered at the wake-up", func() bool {
		return len(k.find("garden", "air_temperature")) > 0 && len(k.find("garden", "battery")) > 0
	})
	if r := k.find("garden", "air_temperature")[0]; r.Value != 18.5 || r.Quality != core.Good {
		t.Fatalf("air_temperature %+v", r)
	}
	waitFor(t, 30*time.Second, "the node sent back to sleep", func() bool {
		return strings.Contains(m.log.String(), "node 13 sleeps (no more information)")
	})
	if !strings.Contains(m.log.String(), "node 13 wake-up interval 1800") {
		t.Fatal("the node never got the new wake-up interval")
	}
	n = nodeStatus(t, c, 13)
	if len(n.Pending) != 0 || n.Dead || n.WakeUpInterval != "30m0s" || n.LastWakeUp == "" {
		t.Fatalf("node 13 after its wake-up: %+v", n)
	}
}

// walkFiles calls fn with the content of every regular file under dir.
func walkFiles(t *testing.T, dir string, fn func(path string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(path, b)
		return nil
	})
	must(t, err, "walk %s", dir)
}
