package zwave

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStore: keys are made once and read back, kept 0600; node records
// survive a restart and belong to one network (home id).
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s := newStore(dir, "zw", slog.New(slog.DiscardHandler))
	if k, err := s.loadKeys(false); k != nil || err != nil {
		t.Fatalf("keys before any were made: %v, %v", k, err)
	}
	k1, err := s.loadKeys(true)
	must(t, err, "make keys")
	path := filepath.Join(dir, "zwave", "zw", keysFile)
	fi, err := os.Stat(path)
	must(t, err, "keys file")
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode %v", fi.Mode().Perm())
	}
	// A restart reads the same keys; a keys file others could read is
	// made private.
	must(t, os.Chmod(path, 0o644), "chmod")
	s2 := newStore(dir, "zw", slog.New(slog.DiscardHandler))
	k2, err := s2.loadKeys(true)
	must(t, err, "load keys")
	if *k1 != *k2 {
		t.Fatal("the keys changed across a restart")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file left %v", fi.Mode().Perm())
	}
	// A damaged file is refused, never replaced.
	must(t, os.WriteFile(path, []byte(`{"s0": "zz"}`), 0o600), "damage")
	if _, err := newStore(dir, "zw", slog.New(slog.DiscardHandler)).loadKeys(true); err == nil || !strings.Contains(err.Error(), "damaged") || strings.Contains(err.Error(), "zz") {
		t.Fatalf("damaged keys file: %v", err)
	}
	same := `{"s0":"00112233445566778899aabbccddeeff","s2_unauthenticated":"00112233445566778899aabbccddeeff","s2_authenticated":"00112233445566778899aabbccddeef0","s2_access_control":"00112233445566778899aabbccddeef1"}`
	if _, err := parseKeys([]byte(same)); err == nil || strings.Contains(err.Error(), "0011") {
		t.Fatalf("two classes with one key: %v", err)
	}

	must(t, s.useNetwork(0xC0FFEE01), "network")
	must(t, s.update(10, func(r *nodeRecord) { r.Security, r.SecureCCs = []string{"s2_access_control", "s0"}, []int{0x62} }), "update")
	must(t, s.update(11, func(r *nodeRecord) { r.WakeUpSeconds = 3600 }), "update")
	must(t, s.forget(11), "forget")
	r := newStore(dir, "zw", slog.New(slog.DiscardHandler))
	must(t, r.useNetwork(0xC0FFEE01), "network after a restart")
	if rec := r.record(10); rec.highest() != secS2AC || !rec.secureCC(0x62) || rec.secureCC(0x25) {
		t.Fatalf("node 10 after a restart: %+v", rec)
	}
	if rec := r.record(11); rec.WakeUpSeconds != 0 {
		t.Fatalf("a forgotten node came back: %+v", rec)
	}
	// Another stick (home id) starts with no records.
	must(t, r.useNetwork(0xDEADBEEF), "other network")
	if rec := r.record(10); rec.highest() != secNone {
		t.Fatalf("node 10 of another network: %+v", rec)
	}
	if fi, err := os.Stat(filepath.Join(dir, "zwave", "zw", "nodes-c0ffee01.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node records: %v %v", fi, err)
	}
}
