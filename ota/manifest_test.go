package ota

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/sign"
)

func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	_, privText, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.ParsePrivateKey(privText)
	if err != nil {
		t.Fatal(err)
	}
	return priv.Public().(ed25519.PublicKey), priv
}

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func sampleManifest() *Manifest {
	return &Manifest{
		Version: "v1.4.0", Channel: "stable", MinPrevious: "v1.2.0",
		CreatedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Parts: map[string]Part{
			Root: {File: "root-1.img.gz", Compression: "gzip", Sha256: hashA, Size: 1000, FileSha256: hashB, FileSize: 900},
			Boot: {File: "boot-1.img.gz", Compression: "gzip", Sha256: hashA, Size: 1000, FileSha256: hashB, FileSize: 900,
				Cmdline: []Extent{{Offset: 10, Length: 100}, {Offset: 500, Length: 100}}},
			MBR: {File: "mbr-1.img", Compression: "none", Sha256: hashA, Size: 512, FileSha256: hashA, FileSize: 512},
		},
	}
}

func TestManifestSignVerify(t *testing.T) {
	pub, priv := testKey(t)
	otherPub, _ := testKey(t)
	data, sig, err := SignManifest(priv, sampleManifest())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("good", func(t *testing.T) {
		m, err := OpenManifest(pub, data, sig)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, sampleManifest()) {
			t.Fatalf("round trip changed the manifest:\n got %+v\nwant %+v", m, sampleManifest())
		}
	})
	t.Run("tampered manifest", func(t *testing.T) {
		bad := bytes.Replace(data, []byte(`"v1.4.0"`), []byte(`"v1.4.1"`), 1)
		if bytes.Equal(bad, data) {
			t.Fatal("test did not tamper")
		}
		if _, err := OpenManifest(pub, bad, sig); !errors.Is(err, sign.ErrBadSignature) {
			t.Fatalf("tampered manifest: err = %v, want ErrBadSignature", err)
		}
	})
	t.Run("white space added", func(t *testing.T) {
		if _, err := OpenManifest(pub, append(data, ' '), sig); !errors.Is(err, sign.ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature: the signature covers the exact bytes", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if _, err := OpenManifest(otherPub, data, sig); !errors.Is(err, sign.ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
	t.Run("missing signature", func(t *testing.T) {
		if _, err := OpenManifest(pub, data, nil); !errors.Is(err, sign.ErrUnsigned) {
			t.Fatalf("err = %v, want ErrUnsigned", err)
		}
	})
	t.Run("garbage signature", func(t *testing.T) {
		if _, err := OpenManifest(pub, data, []byte("not a signature\n")); !errors.Is(err, sign.ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
	t.Run("signed but invalid", func(t *testing.T) {
		doc := []byte(`{"version":"v1"}`)
		_, err := OpenManifest(pub, doc, sign.Sign(priv, doc))
		if err == nil || !strings.Contains(err.Error(), "channel: is required") {
			t.Fatalf("err = %v, want the missing fields listed", err)
		}
	})
}

func TestParseManifestErrors(t *testing.T) {
	_, priv := testKey(t)
	good, _, err := SignManifest(priv, sampleManifest())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		s := strings.Replace(string(good), old, new, 1)
		if s == string(good) {
			t.Fatalf("edit %q not applied", old)
		}
		return s
	}
	for _, c := range []struct{ name, doc, want string }{
		{"unknown field", edit(`"channel"`, `"chanel": "x", "channel"`), `chanel: unknown field (did you mean "channel"?)`},
		{"bad version", edit(`"v1.4.0"`, `"latest"`), `version: "latest" is not a version`},
		{"bad channel", edit(`"stable"`, `"Stable/1"`), `channel: "Stable/1" is not a channel name`},
		{"bad time", edit(`"2026-11-25T12:00:00Z"`, `"yesterday"`), `created_at: `},
		{"no root", edit(`"root": {`, `"rot": {`), `parts: must hold a root part`},
		{"bad hash", edit(`"sha256": "aaaa`, `"sha256": "AAAA`), `parts.boot.sha256: must be 64 lower-case hex digits`},
		{"path in file", edit(`"root-1.img.gz"`, `"../etc/passwd"`), `parts.root.file: "../etc/passwd" is not a plain file name`},
		{"same file twice", edit(`"root-1.img.gz"`, `"boot-1.img.gz"`), `is also the file of part`},
		{"zstd", edit(`"compression": "gzip"`, `"compression": "zstd"`), `"zstd" is not gzip or none`},
		{"negative size", edit(`"size": 1000`, `"size": -1`), `.size: must be from 1`},
		{"overlapping extents", edit(`"offset": 500`, `"offset": 50`), `cmdline[1].offset: extents must be in order`},
		{"extent beyond part", edit(`"offset": 500`, `"offset": 950`), `cmdline[1]: lies beyond the part's 1000 bytes`},
		{"duplicate key", edit(`"channel"`, `"version": "v2", "channel"`), `version: duplicate key`},
		{"not JSON", `{"version":`, `invalid JSON`},
		{"empty", ``, `empty document`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"v1.4.0", "v1.4.0", 0, true},
		{"v1.4.0", "1.4", 0, true},
		{"v1.10.0", "v1.9.9", 1, true},
		{"v1.4.0-rc1", "v1.4.0", -1, true},
		{"v1.4.0-rc2", "v1.4.0-rc1", 1, true},
		{"v2", "v1.99.99", 1, true},
		{"dev", "v1.0.0", 0, false},
	} {
		got, ok := compareVersions(c.a, c.b)
		if got != c.want || ok != c.ok {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d, %v", c.a, c.b, got, ok, c.want, c.ok)
		}
	}
}

func TestWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, time.UTC) }
	w, err := parseWindow("02:00-04:00")
	if err != nil {
		t.Fatal(err)
	}
	if d := w.until(at(3, 0)); d != 0 {
		t.Errorf("03:00 in 02-04: until = %s, want 0", d)
	}
	if d := w.until(at(4, 0)); d != 22*time.Hour {
		t.Errorf("04:00 in 02-04: until = %s, want 22h", d)
	}
	if d := w.until(at(1, 30)); d != 30*time.Minute {
		t.Errorf("01:30 in 02-04: until = %s, want 30m", d)
	}
	night, _ := parseWindow("23:00-01:00")
	if night.until(at(0, 30)) != 0 || night.until(at(23, 30)) != 0 || night.until(at(1, 0)) != 22*time.Hour {
		t.Error("a window over midnight is wrong")
	}
	for _, bad := range []string{"", "2-4", "02:00-02:00", "25:00-01:00", "02:00", "02:00-04:00x", "02:00-24:30", "+2:00-04:00", "00:00-24:00"} {
		if _, err := parseWindow(bad); err == nil {
			t.Errorf("parseWindow(%q) accepted", bad)
		}
	}
}
