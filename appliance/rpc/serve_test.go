package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

// serveInBackground runs Serve and returns a stop function that cancels it
// and returns Serve's error, failing the test if it does not return.
func serveInBackground(t *testing.T, srv *Server, addr, cert, key string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, addr, cert, key) }()
	stopped := false
	var result error
	stop = func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("Serve did not return within 60s of its context ending")
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return stop
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "osgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	f := newFixture(t, Options{})
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	addr := testpeer.Addr(testpeer.FreePort(t))
	stop := serveInBackground(t, f.srv, addr, certFile, keyFile)
	testpeer.WaitTCP(t, addr, 30*time.Second)

	c := NewClient("https://"+addr, testKey, &tls.Config{RootCAs: pool})
	defer c.Close()
	var sum float64
	if err := c.Call(callCtx(t), "add", map[string]int{"a": 20, "b": 22}, &sum); err != nil || sum != 42 {
		t.Fatalf("add over TLS = %v, %v; want 42", sum, err)
	}
	// Over TLS (HTTP/2 when negotiated) a large body is refused the same way
	// and the service goes on.
	var rerr *Error
	err := c.Call(callCtx(t), "echo", map[string]string{"pad": strings.Repeat("x", 2<<20)}, nil)
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "HTTP 413") || !strings.Contains(rerr.Message, "request too large") {
		t.Errorf("2 MiB call over TLS: %v; want HTTP 413 wrapping *Error", err)
	}
	if err := c.Call(callCtx(t), "add", map[string]int{"a": 1, "b": 2}, &sum); err != nil || sum != 3 {
		t.Fatalf("add after the large call = %v, %v; want 3", sum, err)
	}
	// A client that does not trust the certificate is refused by TLS.
	untrusting := NewClient("https://"+addr, testKey, &tls.Config{RootCAs: x509.NewCertPool()})
	defer untrusting.Close()
	var uae x509.UnknownAuthorityError
	if err := untrusting.Call(callCtx(t), "add", map[string]int{"a": 1, "b": 1}, nil); !errors.As(err, &uae) {
		t.Errorf("untrusted certificate: %v; want x509.UnknownAuthorityError", err)
	}
	// Plain HTTP to the TLS port does not reach the methods.
	plain := NewClient("http://"+addr, testKey, nil)
	defer plain.Close()
	if err := plain.Call(callCtx(t), "note", nil, nil); err == nil || f.notes.Load() != 0 {
		t.Errorf("plain HTTP to the TLS port: %v, %d notes", err, f.notes.Load())
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after its context ended, want nil", err)
	}
}

func TestServeTLSFileErrors(t *testing.T) {
	f := newFixture(t, Options{})
	dir := t.TempDir()
	certFile, _, _ := selfSigned(t, dir)
	ctx := callCtx(t)
	for _, tc := range []struct{ cert, key, want string }{
		{certFile, "", "needs both"},
		{"", certFile, "needs both"},
		{certFile, filepath.Join(dir, "missing.pem"), "load TLS certificate " + certFile},
		{certFile, certFile, "load TLS certificate"},
	} {
		err := f.srv.Serve(ctx, "127.0.0.1:0", tc.cert, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Serve(cert %q, key %q) = %v; want an error containing %q", tc.cert, tc.key, err, tc.want)
		}
	}
}

func TestServePortInUse(t *testing.T) {
	f := newFixture(t, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	err = f.srv.Serve(callCtx(t), addr, "", "")
	if err == nil || !strings.Contains(err.Error(), "listen on "+addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Serve on a taken port: %v; want an error naming %s and the cause", err, addr)
	}
}

// TestServeShutdown stops the service while a call is running: the call's
// context ends, the caller still gets an answer, and Serve returns nil and
// frees the port.
func TestServeShutdown(t *testing.T) {
	f := newFixture(t, Options{})
	started := make(chan struct{})
	f.srv.Register("wait", scope.Read, func(ctx context.Context, _ json.RawMessage) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, errors.New("stopping")
	})
	addr := testpeer.Addr(testpeer.FreePort(t))
	stop := serveInBackground(t, f.srv, addr, "", "")
	testpeer.WaitTCP(t, addr, 30*time.Second)

	c := NewClient("http://"+addr, testKey, nil)
	defer c.Close()
	called := make(chan error, 1)
	go func() { called <- c.Call(callCtx(t), "wait", nil, nil) }()
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the wait method never started")
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var rerr *Error
	if err := <-called; !errors.As(err, &rerr) || rerr.Message != "stopping" {
		t.Errorf("the running call got %v; want the handler's answer to its cancelled context", err)
	}
	if _, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		t.Error("the port still accepts connections after Serve returned")
	}
}

func TestServeListener(t *testing.T) {
	f := newFixture(t, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.ServeListener(ctx, l, "", "") }()
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: HTTP %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeListener: %v", err)
	}
}
