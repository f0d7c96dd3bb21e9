package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/strict"
)

// pki is a CA and the files of a certificate it signed.
type pki struct {
	ca     *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	dir    string
}

func newCA(t *testing.T, dir, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{ca: ca, key: key, dir: dir, caFile: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

// issue signs a leaf certificate for dnsName (server or client) and
// writes it and its key; it returns the files.
func (p *pki) issue(t *testing.T, name, dnsName string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dnsName},
		DNSNames: []string{dnsName}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	kd, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, keyFile, "EC PRIVATE KEY", kd)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// server is a TLS server (Go's crypto/tls, the same stack a field broker
// or fleet server may run) with a certificate for "field.test" only, that
// asks for a client certificate signed by its CA when clientCA is set.
func server(t *testing.T, p *pki, clientCA *x509.CertPool) string {
	t.Helper()
	certFile, keyFile := p.issue(t, "server", "field.test", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCA != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clientCA
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				c.Write([]byte("ok"))
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects with the settings and reads the server's "ok" (a client
// certificate the server refuses shows only after the handshake).
func dial(addr string, c Client) error {
	cfg, err := c.Load()
	if err != nil {
		return err
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	_, err = conn.Read(buf)
	return err
}

func TestLoadVerifies(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, dir, "ca"), newCA(t, dir, "other")
	addr := server(t, ca, nil)
	for _, c := range []struct {
		name string
		c    Client
		want string // "" for a connection
	}{
		{"ca_file, address is not the name", Client{CAFile: ca.caFile}, "cannot validate certificate for 127.0.0.1"},
		{"ca_file and server_name", Client{CAFile: ca.caFile, ServerName: "field.test"}, ""},
		{"server_name, another CA", Client{CAFile: other.caFile, ServerName: "field.test"}, "unknown authority"},
		{"system CAs", Client{ServerName: "field.test"}, "unknown authority"},
		{"insecure with ca_file: name not checked", Client{CAFile: ca.caFile, Insecure: true}, ""},
		{"insecure with another CA: chain checked", Client{CAFile: other.caFile, Insecure: true}, "not signed by ca_file"},
		{"insecure without ca_file: anything", Client{Insecure: true}, ""},
	} {
		err := dial(addr, c.c)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestLoadClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "ca")
	pool := x509.NewCertPool()
	pool.AddCert(ca.ca)
	addr := server(t, ca, pool)
	cert, key := ca.issue(t, "client", "gw-1", x509.ExtKeyUsageClientAuth)
	if err := dial(addr, Client{CAFile: ca.caFile, ServerName: "field.test", CertFile: cert, KeyFile: key}); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
	if err := dial(addr, Client{CAFile: ca.caFile, ServerName: "field.test"}); err == nil {
		t.Error("the server took a client without a certificate")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, c := range []struct {
		c    Client
		want string
	}{
		{Client{CAFile: "/nonexistent/ca.pem"}, "read ca_file: open /nonexistent/ca.pem"},
		{Client{CAFile: notPEM}, "ca_file " + notPEM + " holds no PEM certificate"},
		{Client{CertFile: notPEM, KeyFile: notPEM}, "load client certificate (cert_file, key_file)"},
	} {
		if _, err := c.c.Load(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.c, err, c.want)
		}
	}
}

func TestChecks(t *testing.T) {
	yes, no := true, false
	var es strict.Errors
	(&Client{CertFile: "c.pem"}).Check(&es, "a")
	(&Client{KeyFile: "c.key"}).Check(&es, "")
	(&Client{TLS: &yes}).CheckScheme(&es, "b", "ws", false, "ssl://, mqtts:// or wss://", "tcp://")
	(&Client{TLS: &no}).CheckScheme(&es, "c", "https", true, "https://", "http://")
	(&Client{TLS: &no}).CheckScheme(&es, "ok", "http", false, "https://", "http://")
	(&Client{CAFile: "x", ServerName: "n", Insecure: true}).CheckPlain(&es, "d", "is for TLS, and tls is false")
	want := `a.key_file: is required with cert_file
cert_file: is required with key_file
b.tls: is true but ws:// is not encrypted: use ssl://, mqtts:// or wss://
c.tls: is false but https:// is TLS: use http:// for a plain connection
d.ca_file: is for TLS, and tls is false
d.server_name: is for TLS, and tls is false
d.insecure: is for TLS, and tls is false`
	if got := es.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !(&Client{TLS: &no}).Plain() || (&Client{TLS: &yes}).Plain() || (&Client{}).Plain() {
		t.Error("Plain is wrong")
	}
}

// TestKeys: the settings decode strictly, inline in the object that
// embeds them.
func TestKeys(t *testing.T) {
	var s struct {
		URL string `json:"url"`
		Client
	}
	err := strict.Decode([]byte(`{"url": "ssl://h:1", "tls": true, "ca_file": "a", "cert_file": "b", "key_file": "c", "server_name": "d", "insecure": true}`), &s)
	if err != nil || s.TLS == nil || !*s.TLS || s.CAFile != "a" || s.CertFile != "b" || s.KeyFile != "c" || s.ServerName != "d" || !s.Insecure {
		t.Fatalf("%v %+v", err, s)
	}
	err = strict.Decode([]byte(`{"insecure_skip_verify": true}`), &s)
	if err == nil || !strings.Contains(err.Error(), `insecure_skip_verify: is now called "insecure"`) {
		t.Errorf("old key: %v", err)
	}
}
