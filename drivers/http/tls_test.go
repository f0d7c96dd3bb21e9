package http

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// TestPollClientCertificate polls a server that asks for a client
// certificate: the connector sends the one of cert_file and key_file,
// the same keys as every other TLS client of osgate.
func TestPollClientCertificate(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clients"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gw-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, &key.PublicKey, caKey)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"who":%q}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(dir, "server-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	d := dev("meter", fmt.Sprintf(`{"url": %q}`, srv.URL+"/"), ch("who", "", `{"path": "who", "type": "string"}`))
	with := newConn(t, "cert", fmt.Sprintf(`{"ca_file": %q, "cert_file": %q, "key_file": %q, "tls": true}`, caFile, certFile, keyFile), []*core.Device{d}).(core.Poller)
	if rs, err := poll(t, with, d, 30*time.Second); err != nil || keys(rs) != "meter/who=gw-1" {
		t.Errorf("with a client certificate: %v %s", err, keys(rs))
	}
	without := newConn(t, "nocert", fmt.Sprintf(`{"ca_file": %q}`, caFile), []*core.Device{d}).(core.Poller)
	if _, err := poll(t, without, d, 30*time.Second); err == nil {
		t.Error("polled a server that wants a client certificate without one")
	}
}

// TestPollTLSKeys: the TLS keys are checked as everywhere else, "tls"
// against the devices' URLs, and an ingest connector takes none of them.
func TestPollTLSKeys(t *testing.T) {
	for _, c := range []struct {
		settings string
		devices  []*core.Device
		want     []string
	}{
		{`{"tls": true, "cert_file": "c.pem"}`, []*core.Device{dev("a", `{"url": "http://h/x"}`), dev("b", `{"url": "http://h/y"}`)}, []string{
			"settings.key_file: is required with cert_file",
			"settings.tls: is true but http:// is not encrypted: use https://",
		}},
		{`{"tls": false}`, []*core.Device{dev("a", `{"url": "https://h/x"}`)}, []string{
			"settings.tls: is false but https:// is TLS: use http:// for a plain connection",
		}},
		{`{"insecure_skip_verify": true}`, []*core.Device{dev("a", `{"url": "https://h/x"}`)}, []string{
			`settings.insecure_skip_verify: is now called "insecure"`,
		}},
		{`{"ingest": {"api_keys": [{"name": "k", "sha256": "` + strings.Repeat("a", 64) + `"}]}, "server_name": "x", "insecure": true}`, nil, []string{
			"settings.server_name: is for polling; this connector ingests",
			"settings.insecure: is for polling; this connector ingests",
		}},
	} {
		_, err := New(core.ConnectorConfig{Name: "bad", Settings: []byte(c.settings), Devices: c.devices})
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", c.settings, err, w)
			}
		}
		if err != nil && strings.Count(err.Error(), "settings.tls") > 1 {
			t.Errorf("%s: tls reported more than once per scheme: %v", c.settings, err)
		}
	}
}
