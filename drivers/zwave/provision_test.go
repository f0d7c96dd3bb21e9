package zwave

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

func provision(t *testing.T, c *Connector, cmd, params string) (any, error) {
	t.Helper()
	return c.Commands()[cmd].Run(testCtx(t, time.Minute), json.RawMessage(params))
}

func provisionList(t *testing.T, c *Connector) ProvisionList {
	t.Helper()
	res, err := provision(t, c, "provision_list", "")
	must(t, err, "provision_list")
	return res.(ProvisionList)
}

// smartStartDSK reads the DSK of a SmartStart node from the mock's log.
func smartStartDSK(t *testing.T, m *mockPeer, node int) string {
	return m.loggedDSK(t, "smartstart", node)
}

// wrongPIN is dsk with another first group (the PIN): the same NWI home id.
func wrongPIN(dsk string) string {
	pin, _ := strconv.Atoi(dsk[:5])
	return fmt.Sprintf("%05d", (pin+1)%65536) + dsk[5:]
}

// TestSmartStart: the stick listens while the provisioning list has
// entries. Node 32 (a lock) is provisioned with a wrong PIN: it is added by
// the stick but refused its keys. After a restart the list is still there;
// node 30 (an S2 sensor) is provisioned right and joins with S2 on its own,
// and its encrypted reports are read. Node 31 announces itself all along
// but is never provisioned: it is ignored.
func TestSmartStart(t *testing.T) {
	m := startMock(t, "ZW_SMARTSTART=30:sensor,31:sensor,32:lock,33:sensor")
	tty := startPTY(t, m.addr)
	state := t.TempDir()
	var logs testpeer.Buffer
	dsk30, dsk32, dsk33 := smartStartDSK(t, m, 30), smartStartDSK(t, m, 32), smartStartDSK(t, m, 33)

	c1 := newLoggedConnector(t, tty, state, &logs)
	if l := provisionList(t, c1); len(l.Entries) != 0 || l.Listening {
		t.Fatalf("empty list at start: %+v", l)
	}
	if strings.Contains(m.log.String(), "smartstart listening") {
		t.Fatal("the stick listens for SmartStart with an empty list")
	}

	t.Run("wrong DSK: KEX fails, no key sent", func(t *testing.T) {
		res, err := provision(t, c1, "provision_add", `{"dsk": "`+wrongPIN(dsk32)+`", "security": ["s2_access_control"], "name": "back-door"}`)
		must(t, err, "provision_add")
		e := res.(ProvisionEntry)
		if e.DSK != "*****"+dsk32[5:] || fmt.Sprint(e.Security) != "[s2_access_control]" {
			t.Fatalf("entry %+v", e)
		}
		var st string
		waitFor(t, 90*time.Second, "node 32's inclusion to fail", func() bool {
			l := provisionList(t, c1)
			st = l.Entries[0].Status
			return strings.Contains(st, "does not match")
		})
		if !strings.Contains(st, "provisioning entry") {
			t.Fatalf("status %q", st)
		}
		waitFor(t, 10*time.Second, "node 32 got KEX Fail", func() bool { return contains(received(m, 32), "Security2CCKEXFail") })
		// No key, nothing encrypted (a nonce may follow the KEX Fail).
		for _, r := range received(m, 32) {
			if strings.Contains(r, "NetworkKey") || strings.Contains(r, "Encapsulation") || strings.Contains(r, "TransferEnd") {
				t.Errorf("node 32 received %s after a wrong DSK", r)
			}
		}
		n := nodeStatus(t, c1, 32)
		if n.Security != "none" || len(n.SecurityClasses) != 0 || !strings.Contains(n.SecurityError, "does not match") || n.Name != "back-door" {
			t.Fatalf("node 32 after a refused SmartStart inclusion: %+v", n)
		}
	})

	t.Run("another node's DSK: refused before any key", func(t *testing.T) {
		// Group 2 differs: the same NWI home id (groups 5 and 6), another
		// public key.
		g2, _ := strconv.Atoi(dsk33[6:11])
		other := dsk33[:6] + fmt.Sprintf("%05d", (g2+1)%65536) + dsk33[11:]
		_, err := provision(t, c1, "provision_add", `{"dsk": "`+other+`", "name": "attic"}`)
		must(t, err, "provision_add")
		waitFor(t, 90*time.Second, "node 33's inclusion to fail", func() bool {
			for _, e := range provisionList(t, c1).Entries {
				if strings.Contains(e.Status, "is not the DSK of its provisioning entry") {
					return e.NodeID == 33
				}
			}
			return false
		})
		waitFor(t, 10*time.Second, "node 33 got KEX Fail", func() bool { return contains(received(m, 33), "Security2CCKEXFail") })
		// Not even the driver's public key went out.
		for _, r := range received(m, 33) {
			if r != "Security2CCKEXGet" && r != "Security2CCKEXSet" && r != "Security2CCKEXFail" && r != "Security2CCNonceReport" {
				t.Errorf("node 33 received %s", r)
			}
		}
		if n := nodeStatus(t, c1, 33); n.Security != "none" || n.Name != "attic" || !strings.Contains(n.SecurityError, "not the DSK") {
			t.Fatalf("node 33: %+v", n)
		}
	})

	// The list survives a restart of the connector.
	c1.Close()
	c2 := newLoggedConnector(t, tty, state, &logs, dev("cellar", 30, 0, "air_temperature"))
	l := provisionList(t, c2)
	if len(l.Entries) != 2 || l.Entries[0].DSK != "*****"+dsk32[5:] || l.Entries[0].Name != "back-door" || l.Entries[0].NodeID != 32 || l.Entries[1].NodeID != 33 {
		t.Fatalf("list after a restart: %+v", l)
	}
	fi, err := os.Stat(filepath.Join(state, "zwave", "zw", provisioningFile))
	must(t, err, "provisioning file")
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("provisioning file mode %v, want 0600", fi.Mode().Perm())
	}
	// Opening the stick again has it listen again.
	nodeStatus(t, c2, 32)
	waitFor(t, 30*time.Second, "the stick to listen after a restart", func() bool { return provisionList(t, c2).Listening })

	t.Run("provisioned node joins with S2", func(t *testing.T) {
		_, err := provision(t, c2, "provision_add", `{"dsk": "`+dsk30+`", "security": ["s2_authenticated", "s2_unauthenticated"], "name": "cellar sensor", "location": "cellar"}`)
		must(t, err, "provision_add")
		waitFor(t, 90*time.Second, "node 30 to join", func() bool {
			for _, e := range provisionList(t, c2).Entries {
				if e.NodeID == 30 && strings.HasPrefix(e.Status, "included") {
					return true
				}
			}
			return false
		})
		n := nodeStatus(t, c2, 30)
		if n.Name != "cellar sensor" || n.Location != "cellar" || n.Security != "s2_authenticated" || n.DSK != "*****"+dsk30[5:] {
			t.Fatalf("node 30: %+v", n)
		}
		r := pollOne(t, c2, dev("cellar", 30, 0, "air_temperature"), "air_temperature")
		if r.Value != 21.5 {
			t.Fatalf("air_temperature of node 30: %+v", r)
		}
		if !contains(received(m, 30), "Security2CCMessageEncapsulation[S2_Authenticated] > MultilevelSensorCCGet") {
			t.Fatalf("node 30 got %v", received(m, 30))
		}
	})

	t.Run("unprovisioned node ignored", func(t *testing.T) {
		waitFor(t, 30*time.Second, "announcements of node 31 counted", func() bool {
			return provisionList(t, c2).Ignored > 0
		})
		if strings.Contains(m.log.String(), "smartstart inclusion of") && strings.Count(m.log.String(), "smartstart inclusion of") != 3 {
			t.Errorf("SmartStart inclusions other than nodes 32, 33 and 30:\n%s", m.log.String())
		}
		res, err := c2.Commands()["nodes"].Run(testCtx(t, time.Minute), nil)
		must(t, err, "nodes")
		for _, n := range res.([]NodeStatus) {
			if n.NodeID == 31 {
				t.Fatalf("node 31 was included: %+v", n)
			}
		}
		if !strings.Contains(logs.String(), "SmartStart node not in the provisioning list ignored") {
			t.Error("ignored announcements are not logged at debug")
		}
	})

	t.Run("PIN never logged or listed", func(t *testing.T) {
		for _, d := range []string{dsk30, wrongPIN(dsk32)} {
			if strings.Contains(logs.String(), d) || strings.Contains(logs.String(), d[:11]) {
				t.Errorf("a full DSK (with its PIN) is in the log")
			}
		}
		b, _ := json.Marshal(provisionList(t, c2))
		if strings.Contains(string(b), dsk30[:11]) {
			t.Errorf("the list shows a PIN: %s", b)
		}
	})

	t.Run("full list refused", func(t *testing.T) {
		n := len(provisionList(t, c2).Entries)
		for i := n; i < maxProvisioning; i++ {
			_, err := provision(t, c2, "provision_add", fmt.Sprintf(`{"dsk": "00000-00000-00000-00000-00001-%05d-00000-00000"}`, i))
			must(t, err, "provision_add %d", i)
		}
		_, err := provision(t, c2, "provision_add", `{"dsk": "11111-11111-11111-11111-11111-11111-11111-11111"}`)
		if !errors.Is(err, errProvisioningFull) {
			t.Fatalf("add to a full list: %v", err)
		}
		if l := provisionList(t, c2); len(l.Entries) != maxProvisioning {
			t.Fatalf("%d entries after a refused add", len(l.Entries))
		}
		// Removing by the listed form makes room again.
		_, err = provision(t, c2, "provision_remove", `{"dsk": "*****-00000-00000-00000-00001-00010-00000-00000"}`)
		must(t, err, "provision_remove")
		if l := provisionList(t, c2); len(l.Entries) != maxProvisioning-1 {
			t.Fatalf("%d entries after a remove", len(l.Entries))
		}
	})

	t.Run("empty list stops listening", func(t *testing.T) {
		for _, e := range provisionList(t, c2).Entries {
			_, err := provision(t, c2, "provision_remove", `{"dsk": "`+e.DSK+`"}`)
			must(t, err, "provision_remove %s", e.DSK)
		}
		waitFor(t, 10*time.Second, "the mock to stop listening", func() bool {
			return strings.Contains(m.log.String(), "smartstart listening stopped (stop)")
		})
		if l := provisionList(t, c2); len(l.Entries) != 0 || l.Listening {
			t.Fatalf("list after removing every entry: %+v", l)
		}
		// The included node stays.
		if n := nodeStatus(t, c2, 30); n.Security != "s2_authenticated" {
			t.Fatalf("node 30 after its entry was removed: %+v", n)
		}
	})
}

// TestSmartStartUnsupported: a stick whose library predates SmartStart
// refuses to listen; the entry is kept.
func TestSmartStartUnsupported(t *testing.T) {
	m := startMock(t, "ZW_LIBRARY=Z-Wave 4.61", "ZW_SMARTSTART=30:sensor")
	tty := startPTY(t, m.addr)
	state := t.TempDir()
	c := newTestConnectorIn(t, tty, state)
	dsk := smartStartDSK(t, m, 30)
	_, err := provision(t, c, "provision_add", `{"dsk": "`+dsk+`"}`)
	if !errors.Is(err, errUnsupported) || !strings.Contains(err.Error(), "function not supported") || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("add on a stick without SmartStart: %v", err)
	}
	l := provisionList(t, c)
	if len(l.Entries) != 1 || l.Listening || !strings.Contains(l.Error, "SmartStart needs") {
		t.Fatalf("list: %+v", l)
	}
	if strings.Contains(m.log.String(), "smartstart listening") {
		t.Fatal("the stick was asked to listen")
	}
}
