package appliance

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestEscalation(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var reboots int
	e := escalation{
		file:      filepath.Join(t.TempDir(), escalateFile),
		now:       func() time.Time { return now },
		reboot:    func(context.Context) error { reboots++; return nil },
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		limit:     3,
		window:    15 * time.Minute,
		rebootGap: time.Hour,
	}
	step := func(d time.Duration, wantReboot bool) {
		t.Helper()
		now = now.Add(d)
		if got := e.record(context.Background()); got != wantReboot {
			t.Fatalf("at %s: rebooted %v, want %v", now.Format(time.TimeOnly), got, wantReboot)
		}
	}
	step(0, false)
	step(20*time.Minute, false) // the first exit fell out of the window
	step(time.Minute, false)
	step(time.Minute, true) // three within 15 minutes
	step(time.Minute, false)
	step(time.Minute, false)
	step(time.Minute, false) // three again, but the last reboot is recent
	step(time.Hour, false)   // the gap has passed, and the old exits are stale
	step(time.Minute, false)
	step(time.Minute, true)
	now = time.Unix(0, 0) // a Pi before NTP: the last reboot is "in the future"
	step(0, false)
	step(time.Minute, false)
	step(time.Minute, false)
	if reboots != 2 {
		t.Fatalf("%d reboots, want 2", reboots)
	}
}

// TestGokrazyReboot: the reboot is a POST to gokrazy's /reboot with basic
// auth gokrazy:<password from the password file>.
func TestGokrazyReboot(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.URL.Path != "/reboot" || !ok || user != "gokrazy" || pw != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		calls.Add(1)
	}))
	defer srv.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "gokr-pw.txt")
	defer func(u string, p []string) { gokrazyURL, gokrazyPasswords = u, p }(gokrazyURL, gokrazyPasswords)
	gokrazyURL = srv.URL
	gokrazyPasswords = []string{filepath.Join(dir, "missing"), pwFile}

	if err := gokrazyReboot(context.Background()); err == nil {
		t.Fatal("reboot without a password file succeeded")
	}
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	if err := gokrazyReboot(context.Background()); err == nil {
		t.Fatal("reboot with a wrong password reported success")
	}
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	if err := gokrazyReboot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d reboots reached gokrazy, want 1", calls.Load())
	}
}
