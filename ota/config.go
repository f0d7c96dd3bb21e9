package ota

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/osgate/osgate/appliance/health"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/strict"
	"github.com/osgate/osgate/internal/tlsconf"
)

// Config is the agent's configuration file (on the appliance baked into
// the image, e.g. /etc/osgate/ota.json, or a local bootstrap file; never
// part of a pulled configuration, which must not be able to change the key
// releases are verified with).
type Config struct {
	URL            string        `json:"url" strict:"required"`        // https://fleet.example.com/ota/stable/manifest.json, or .../cohort-{cohort}.json
	PublicKey      string        `json:"public_key" strict:"required"` // base64, from osgate release keygen
	Channel        string        `json:"channel"`
	Interval       time.Duration `json:"interval"`
	ConfirmAfter   time.Duration `json:"confirm_after"`
	ConfirmTimeout time.Duration `json:"confirm_timeout"`
	AcceptDegraded bool          `json:"accept_degraded"`
	Window         string        `json:"window"`        // "02:00-04:00"
	PasswordFile   string        `json:"password_file"` // default /perm/gokr-pw.txt
	UpdateURL      string        `json:"update_url"`    // default http://127.0.0.1
	// TLS settings of the connection to the release server
	// (internal/tlsconf), as for every other server osgate connects to.
	tlsconf.Client
}

// LoadConfig reads a Config strictly.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ota: %w", err)
	}
	var c Config
	if err := strict.Decode(b, &c); err != nil {
		return nil, fmt.Errorf("ota: %s: %w", path, err)
	}
	if _, err := sign.ParsePublicKey(c.PublicKey); err != nil {
		return nil, fmt.Errorf("ota: %s: public_key: %w", path, err)
	}
	var es strict.Errors
	c.Check(&es, "")
	if u, err := url.Parse(c.URL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		c.CheckScheme(&es, "", u.Scheme, u.Scheme == "https", "https://", "http://")
	}
	if err := es.Err(); err != nil {
		return nil, fmt.Errorf("ota: %s: %w", path, err)
	}
	if c.Window != "" {
		if _, err := parseWindow(c.Window); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// Agent makes the agent of a gokrazy device from c: running is the
// gateway's version, gateway its id (its cohort), stateDir its state
// directory (under /perm), report the health model's Report.
func (c *Config) Agent(running, gateway, stateDir string, report func() health.Report, log *slog.Logger) (*Agent, error) {
	pwFile := c.PasswordFile
	if pwFile == "" {
		pwFile = PasswordFile
	}
	pw, err := ReadPassword(pwFile)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	up := &Gokrazy{URL: c.UpdateURL, Password: pw}
	if up.BootDevice, err = BootDevice(); err != nil {
		log.Warn("ota: the boot write will not be read back", "err", err)
	}
	a, err := c.AgentWith(up, running, gateway, stateDir, report, log)
	if err != nil {
		return nil, err
	}
	a.watchdog = WatchdogDevice
	return a, nil
}

// AgentWith is Agent with up in place of gokrazy's update API: the
// stand-in of the fleet simulation, where no gokrazy runs.
func (c *Config) AgentWith(up Updater, running, gateway, stateDir string, report func() health.Report, log *slog.Logger) (*Agent, error) {
	pub, err := sign.ParsePublicKey(c.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ota: public_key: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	tr, err := c.Client.Transport()
	if err != nil {
		return nil, fmt.Errorf("ota: %w", err)
	}
	return New(Options{
		URL: c.URL, Channel: c.Channel, PublicKey: pub, Running: running, Gateway: gateway, StateDir: stateDir,
		Updater: up, Health: report,
		ConfirmAfter: c.ConfirmAfter, ConfirmTimeout: c.ConfirmTimeout, AcceptDegraded: c.AcceptDegraded,
		Interval: c.Interval, Window: c.Window, Logger: log,
		Client: &http.Client{Timeout: clientTimeout, Transport: tr},
	})
}
