// Package tlsconf is the one shape of TLS client settings in osgate's
// configuration, and the one place that checks it and turns it into a
// crypto/tls config. Every connection osgate opens to a server takes the
// same keys, with the same meaning: field MQTT brokers, the cloud bridge
// (written into mosquitto.conf), HTTP polling, the fleet configuration
// server and the release server.
//
//	"tls"          false: plain on purpose; true: it must be TLS. Where a
//	               plain URL would send credentials in clear text (a field
//	               broker, the bridge), it takes "tls": false to say so.
//	"ca_file"      PEM bundle of the CAs trusted (default: the system's)
//	"cert_file"    client certificate (PEM), with "key_file", its key
//	"key_file"
//	"server_name"  the name the server's certificate must carry (default:
//	               the URL's host)
//	"insecure"     the server's name is not checked: with ca_file the
//	               certificate must still be signed by one of its CAs;
//	               without, any certificate is taken (commissioning only)
//
// Embed Client (no json tag) in the settings of a connection; strict and
// encoding/json take its keys as the settings' own.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/osgate/osgate/internal/strict"
)

// Client is the TLS settings of one connection.
type Client struct {
	TLS        *bool  `json:"tls"`
	CAFile     string `json:"ca_file"`
	CertFile   string `json:"cert_file"`
	KeyFile    string `json:"key_file"`
	ServerName string `json:"server_name"`
	Insecure   bool   `json:"insecure" strict:"was=insecure_skip_verify"`
}

// Plain reports whether the settings say "tls": false.
func (c *Client) Plain() bool { return c.TLS != nil && !*c.TLS }

// Check reports what is wrong in the settings themselves, with paths
// under path (the object that holds the keys; "" for the root): a
// certificate without its key, or a key without its certificate.
func (c *Client) Check(es *strict.Errors, path string) {
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		es.Add(strict.Join(path, "key_file"), "is required with cert_file")
	case c.CertFile == "" && c.KeyFile != "":
		es.Add(strict.Join(path, "cert_file"), "is required with key_file")
	}
}

// CheckScheme reports a "tls" that contradicts the URL's scheme (secure:
// it is a TLS one). The errors name the schemes to use instead, e.g.
// tlsSchemes "https://" and plainScheme "http://".
func (c *Client) CheckScheme(es *strict.Errors, path, scheme string, secure bool, tlsSchemes, plainScheme string) {
	switch {
	case c.TLS == nil:
	case *c.TLS && !secure:
		es.Add(strict.Join(path, "tls"), "is true but %s:// is not encrypted: use %s", scheme, tlsSchemes)
	case !*c.TLS && secure:
		es.Add(strict.Join(path, "tls"), "is false but %s:// is TLS: use %s for a plain connection", scheme, plainScheme)
	}
}

// CheckPlain reports every TLS key set on a connection that does not use
// TLS; why completes each error ("is for TLS, and tls is false").
func (c *Client) CheckPlain(es *strict.Errors, path, why string) {
	for _, k := range []struct {
		key string
		set bool
	}{
		{"ca_file", c.CAFile != ""}, {"cert_file", c.CertFile != ""}, {"key_file", c.KeyFile != ""},
		{"server_name", c.ServerName != ""}, {"insecure", c.Insecure},
	} {
		if k.set {
			es.Add(strict.Join(path, k.key), "%s", why)
		}
	}
}

// Load reads the files and returns the client's crypto/tls config: TLS
// 1.2 at least, the CAs of ca_file (else the system's), the client
// certificate, server_name, and insecure as the package says. Its errors
// name the key and the file.
func (c *Client) Load() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate (cert_file, key_file): %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.Insecure {
		// Only by the config's explicit choice: crypto/tls checks
		// nothing now; with ca_file, VerifyConnection checks the chain.
		cfg.InsecureSkipVerify = true
		if cfg.RootCAs != nil {
			cfg.VerifyConnection = chainOnly(cfg.RootCAs)
		}
	}
	return cfg, nil
}

// Transport returns an HTTP transport (net/http's defaults) that connects
// with the client's TLS config.
func (c *Client) Transport() (*http.Transport, error) {
	cfg, err := c.Load()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return tr, nil
}

// chainOnly checks that the server's certificate is signed by one of
// roots, and not the name it carries.
func chainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("tls: server certificate not signed by ca_file: %w", err)
		}
		return nil
	}
}
