package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/osgate/osgate/internal/gokrazyapi"
)

// Updater is what the agent needs of the device: gokrazy's update API
// (Put of a part returns the sha256 of the bytes written, Switch makes the
// running try-boot root permanent, Reboot) and two facts about the
// running system (its kernel command line, an id that changes at every
// boot).
type Updater interface {
	// Put writes part (root, boot or mbr) and returns the hex sha256 of
	// what was written.
	Put(ctx context.Context, part string, r io.Reader) (string, error)
	Switch(ctx context.Context) error
	Reboot(ctx context.Context) error
	Features(ctx context.Context) (string, error)
	Cmdline() (string, error)
	BootID() (string, error)
}

// Gokrazy is the Updater of a gokrazy device: its update API on
// 127.0.0.1 with the per-device password.
type Gokrazy struct {
	URL      string // default http://127.0.0.1
	Password string
	// BootDevice, when set (e.g. /dev/mmcblk0p1), is read back after a boot
	// write and its hash compared with what was sent.
	BootDevice string
	Client     *http.Client
}

// PasswordFile is where a gokrazy device keeps its own update password.
// The agent never uses /etc/gokr-pw.txt: that one is baked into every
// image, so into every release (gokrazyapi.UpdatePasswordFiles).
const PasswordFile = gokrazyapi.DevicePasswordFile

// ReadPassword reads the per-device update password.
func ReadPassword(path string) (string, error) {
	pw, err := gokrazyapi.ReadPassword([]string{path})
	if err != nil {
		return "", fmt.Errorf("ota: update password: %w (each device needs its own in %s)", err, PasswordFile)
	}
	return pw, nil
}

func (g *Gokrazy) api() *gokrazyapi.Client {
	return &gokrazyapi.Client{URL: g.URL, Password: g.Password, HTTP: g.Client}
}

func (g *Gokrazy) do(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	return g.api().Do(ctx, method, path, body)
}

// Put implements Updater.
func (g *Gokrazy) Put(ctx context.Context, part string, r io.Reader) (string, error) {
	h := sha256.New()
	n := &counter{}
	b, err := g.do(ctx, http.MethodPut, "/update/"+part, io.TeeReader(r, io.MultiWriter(h, n)))
	if err != nil {
		return "", err
	}
	got := strings.TrimSpace(string(b))
	if part == Boot && g.BootDevice != "" {
		if err := readBack(g.BootDevice, n.n, hex.EncodeToString(h.Sum(nil))); err != nil {
			return "", err
		}
	}
	return got, nil
}

// readBack hashes the first n bytes of dev.
func readBack(dev string, n int64, want string) error {
	f, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("read back %s: %w", dev, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		return fmt.Errorf("read back %s: %w", dev, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("read back %s: sha256 %s, wrote %s", dev, got, want)
	}
	return nil
}

// Switch implements Updater.
func (g *Gokrazy) Switch(ctx context.Context) error {
	_, err := g.do(ctx, http.MethodPost, "/update/switch", nil)
	return err
}

// Reboot implements Updater. gokrazy stops every service (this one too)
// and reboots a second later.
func (g *Gokrazy) Reboot(ctx context.Context) error {
	return g.api().Reboot(ctx, true)
}

// Features implements Updater.
func (g *Gokrazy) Features(ctx context.Context) (string, error) {
	b, err := g.do(ctx, http.MethodGet, "/update/features", nil)
	return strings.TrimSpace(string(b)), err
}

// Cmdline implements Updater.
func (g *Gokrazy) Cmdline() (string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "", fmt.Errorf("ota: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// BootID implements Updater.
func (g *Gokrazy) BootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("ota: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

var errNoReboot = errors.New("ota: the device did not reboot within 5 minutes of the request")

// rebootWait is how long the agent waits to be stopped after asking for a
// reboot.
var rebootWait = 5 * time.Minute
