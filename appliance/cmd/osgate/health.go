package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/osgate/osgate/config"
)

// healthCmd asks the gateway's /healthz, at the rpc.listen of its config
// (-c, default $OSGATE_CONFIG), and prints the verdict. It fails when the
// gateway is unhealthy or does not answer: the container image's
// HEALTHCHECK, which has no shell or curl to do it.
func healthCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	cfgFile := fs.String("c", os.Getenv("OSGATE_CONFIG"), "the gateway's config file: ask at its rpc.listen")
	url := fs.String("url", "", "the RPC service's URL (default: from -c, else $OSGATE_RPC_URL, else http://127.0.0.1:8080)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return usageError{"health takes no arguments"}
	}
	t, err := rpcTarget(*cfgFile, *url, "")
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	u, err := neturl.Parse(t.url)
	if err != nil {
		return fmt.Errorf("health: URL %q (from %s): %w", t.url, t.urlFrom, err)
	}
	u.Path, u.RawQuery, u.User = "/healthz", "", nil
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: t.tls}}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("health: %s (the URL from %s) does not answer: %w", u, t.urlFrom, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("health: read %s: %w", u, err)
	}
	var rep struct {
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal(body, &rep); err != nil || rep.Status == "" {
		return fmt.Errorf("health: %s answered HTTP %d without a health report: %.200q", u, resp.StatusCode, body)
	}
	verdict := rep.Status
	if len(rep.Reasons) > 0 {
		verdict += ": " + strings.Join(rep.Reasons, "; ")
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", verdict)
	}
	fmt.Fprintln(stdout, verdict)
	return nil
}

// brokerCmd: `osgate broker password` prints the password of
// broker.username from broker.password_file, as osgate made it (the
// container image's MQTT login). The config is -c, default
// $OSGATE_CONFIG, else the embedded default.
func brokerCmd(args []string, stdout io.Writer) error {
	if len(args) < 1 || args[0] != "password" {
		return usageError{"broker needs a subcommand: password"}
	}
	fs := flag.NewFlagSet("broker password", flag.ContinueOnError)
	cfgFile := fs.String("c", os.Getenv("OSGATE_CONFIG"), "the gateway's config file (default: the embedded default)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return usageError{"broker password takes no arguments"}
	}
	cfg, from := config.Default(), "the embedded default config"
	if *cfgFile != "" {
		var err error
		if cfg, err = config.Load(*cfgFile); err != nil {
			return fmt.Errorf("broker password: %w", err)
		}
		from = *cfgFile
	}
	b := cfg.Broker
	if b.PasswordFile == "" {
		return fmt.Errorf("broker password: %s names no broker.password_file: the password of broker.username (%q) is the one in the config", from, b.Username)
	}
	raw, err := os.ReadFile(b.PasswordFile)
	if err != nil {
		return fmt.Errorf("broker password: %w (osgate makes the file when the broker first starts)", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fmt.Fprintln(stdout, strings.TrimSpace(line))
	return nil
}
