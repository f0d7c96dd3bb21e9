// Package gokrazyapi is osgate's one client of gokrazy's HTTP API on the
// device: its address, its basic auth, which password file serves which
// purpose, and how an answer is read. The OTA agent (the update endpoints)
// and the watchdog's escalation (a reboot) both use it.
package gokrazyapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// DefaultURL is where gokrazy's init serves its API on the device.
const DefaultURL = "http://127.0.0.1"

// gokrazy reads its API password from the device's own file if there is
// one, else from the one baked into the image. The image's file is the
// same in every image, and so in every release.
const (
	DevicePasswordFile = "/perm/gokr-pw.txt"
	ImagePasswordFile  = "/etc/gokr-pw.txt"
)

// The password rules, one per purpose:
//   - Updates use the device's own password only: an update agent that
//     accepted the image's password would let anyone holding a release
//     write a root file system to every device that kept it.
//   - A reboot uses whatever password gokrazy itself accepts (the device's,
//     else the image's): it is asked for by the gateway on the device.
var (
	UpdatePasswordFiles = []string{DevicePasswordFile}
	RebootPasswordFiles = []string{DevicePasswordFile, ImagePasswordFile}
)

// ReadPassword returns the password in the first of files that exists. An
// empty file is an error: gokrazy would refuse every call.
func ReadPassword(files []string) (string, error) {
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return "", fmt.Errorf("gokrazy password: %w", err)
		}
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("gokrazy password file %s is empty", p)
		}
		return pw, nil
	}
	return "", fmt.Errorf("no gokrazy password file (%s)", strings.Join(files, " or "))
}

// Client calls gokrazy's API.
type Client struct {
	URL      string // DefaultURL when empty
	Password string
	HTTP     *http.Client // http.DefaultClient when nil
}

// maxAnswer bounds what is read of an answer: gokrazy answers with a hash
// or a short message.
const maxAnswer = 64 << 10

// Do sends one request and returns the answer's body; any status but 200
// is an error carrying gokrazy's message.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	base := c.URL
	if base == "" {
		base = DefaultURL
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, fmt.Errorf("gokrazy %s: %w", path, err)
	}
	req.SetBasicAuth("gokrazy", c.Password)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gokrazy %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("gokrazy %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("gokrazy %s: HTTP %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// Reboot asks gokrazy to stop every service and reboot. With async it
// answers at once and reboots a second later (the caller is one of the
// services it stops).
func (c *Client) Reboot(ctx context.Context, async bool) error {
	path := "/reboot"
	if async {
		path += "?async=true"
	}
	_, err := c.Do(ctx, http.MethodPost, path, nil)
	return err
}
