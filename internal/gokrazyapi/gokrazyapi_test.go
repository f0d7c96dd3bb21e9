package gokrazyapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadPassword: the first existing file wins, an empty one is refused,
// and a missing one is skipped (the update rule lists only the device's).
func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	dev, img := filepath.Join(dir, "perm"), filepath.Join(dir, "etc")
	os.WriteFile(img, []byte("image\n"), 0o600)
	if pw, err := ReadPassword([]string{dev, img}); err != nil || pw != "image" {
		t.Fatalf("no device file: %q, %v; want the image's", pw, err)
	}
	if _, err := ReadPassword([]string{dev}); err == nil || !strings.Contains(err.Error(), dev) {
		t.Fatalf("device file only, missing: err = %v, want one naming %s", err, dev)
	}
	os.WriteFile(dev, []byte("device\n"), 0o600)
	if pw, err := ReadPassword([]string{dev, img}); err != nil || pw != "device" {
		t.Fatalf("device file: %q, %v; want the device's", pw, err)
	}
	os.WriteFile(dev, []byte(" \n"), 0o600)
	if _, err := ReadPassword([]string{dev, img}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty device file: err = %v", err)
	}
}

// TestClient: basic auth as gokrazy, the body of a 200, gokrazy's message
// on an error, and the async reboot path. gokrazy's init cannot run here
// outside the VM test (make vm-test drives the real one), so an httptest
// server stands in for it.
func TestClient(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "gokrazy" || p != "pw" {
			http.Error(w, "wrong password", http.StatusUnauthorized)
			return
		}
		paths = append(paths, r.Method+" "+r.URL.RequestURI())
		w.Write([]byte("abc\n"))
	}))
	defer srv.Close()
	c := Client{URL: srv.URL, Password: "pw"}
	if b, err := c.Do(context.Background(), http.MethodGet, "/update/features", nil); err != nil || string(b) != "abc\n" {
		t.Fatalf("Do: %q, %v", b, err)
	}
	if err := c.Reboot(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if err := c.Reboot(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /update/features", "POST /reboot?async=true", "POST /reboot"}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Fatalf("calls %q, want %q", paths, want)
	}
	bad := Client{URL: srv.URL, Password: "nope"}
	if err := bad.Reboot(context.Background(), false); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("wrong password: err = %v, want gokrazy's message", err)
	}
}
