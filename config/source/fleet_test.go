package source

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/testpeer"
)

// fleet is an nginx serving a fleet directory on loopback, as any static
// web server would: gateways/<id>.json and gateways/<id>.json.sig.
type fleet struct {
	*testpeer.Nginx
	dir    string // document root
	scheme string
	mtime  time.Time // advanced at every publish so nginx's ETag changes
}

type fleetOptions struct {
	token string    // required bearer token, "" for none
	tls   *tlsFiles // serve https, demanding a client certificate
	// validators: "" for nginx's default (ETag and Last-Modified),
	// "last-modified" for no ETag, "none" for no conditional requests.
	validators string
}

type tlsFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func startFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	f := &fleet{
		dir:    filepath.Join(t.TempDir(), "www"),
		scheme: "http",
		mtime:  time.Now().Add(-time.Hour).Truncate(time.Second),
	}
	if err := os.MkdirAll(filepath.Join(f.dir, "gateways"), 0o755); err != nil {
		t.Fatal(err)
	}
	var ssl string
	if o.tls != nil {
		f.scheme = "https"
		ssl = fmt.Sprintf(`ssl_certificate %s; ssl_certificate_key %s;
		ssl_client_certificate %s; ssl_verify_client on;`, o.tls.serverCert, o.tls.serverKey, o.tls.ca)
	}
	var auth string
	if o.token != "" {
		auth = fmt.Sprintf(`if ($http_authorization != "Bearer %s") { return 401; }`, o.token)
	}
	switch o.validators {
	case "last-modified":
		auth += " etag off;"
	case "none":
		auth += " etag off; if_modified_since off;"
	}
	f.Nginx = testpeer.StartNginx(t, testpeer.NginxOptions{
		Root:      f.dir,
		TLS:       o.tls != nil,
		Server:    ssl + "\n\t\tlocation / { " + auth + " }",
		LogFormat: "$request_method $uri $status",
	})
	return f
}

// start and stop run and end the fleet server (same port, same files).
func (f *fleet) start(t *testing.T) { t.Helper(); f.Start() }
func (f *fleet) stop(t *testing.T)  { t.Helper(); f.Stop() }

func (f *fleet) url() string {
	return f.scheme + "://" + f.Addr() + "/gateways/{gateway}.json"
}

// publish writes a gateway's document and, when sig is not nil, its
// signature (an empty sig deletes the signature file).
func (f *fleet) publish(t *testing.T, gateway string, doc, sig []byte) {
	t.Helper()
	path := filepath.Join(f.dir, "gateways", gateway+".json")
	f.mtime = f.mtime.Add(time.Second)
	write(t, path, doc, f.mtime)
	switch {
	case sig == nil:
	case len(sig) == 0:
		os.Remove(path + ".sig")
	default:
		write(t, path+".sig", sig, f.mtime)
	}
}

func write(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// requests counts access log lines for uri with status (0: any).
func (f *fleet) requests(t *testing.T, uri string, status int) int {
	t.Helper()
	n := 0
	for _, l := range f.AccessLog(uri) {
		fields := strings.Fields(l)
		if len(fields) == 3 && fields[1] == uri && (status == 0 || fields[2] == fmt.Sprint(status)) {
			n++
		}
	}
	return n
}

// waitRequests waits until the access log has at least n lines for uri
// with status: nginx writes a line after it has answered.
func (f *fleet) waitRequests(t *testing.T, uri string, status, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d×%d for %s in the access log", n, status, uri), func() bool { return f.requests(t, uri, status) >= n })
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// makeTLS writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA.
func makeTLS(t *testing.T) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "osgate test fleet CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	files := &tlsFiles{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, files.ca, "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		cert, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, kf, "PRIVATE KEY", keyDER)
		return cert, kf
	}
	files.serverCert, files.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	files.clientCert, files.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return files
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testKey is a signing key pair for the tests.
type testKey struct {
	pub  string
	priv ed25519.PrivateKey
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	pub, priv, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub: pub, priv: p}
}

// nextAsync runs Next in a goroutine the test owns.
func nextAsync[T any](ctx context.Context, s *Source[T]) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		u, err := s.Next(ctx)
		ch <- result[T]{u, err}
	}()
	return ch
}

type result[T any] struct {
	u   Update[T]
	err error
}
