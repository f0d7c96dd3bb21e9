package http

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// collector is an emit function keeping every reading; with gate set it
// waits for a value on gate before taking each reading.
type collector struct {
	mu     sync.Mutex
	rs     []core.Reading
	held   int // emit calls waiting at the gate
	change chan struct{}
	gate   chan struct{}
}

func newCollector() *collector { return &collector{change: make(chan struct{})} }

func (c *collector) notify() {
	close(c.change)
	c.change = make(chan struct{})
}

func (c *collector) emit(ctx context.Context) func(...core.Reading) error {
	one := c.emitOne(ctx)
	return func(rs ...core.Reading) error {
		for _, r := range rs {
			if err := one(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// emitOne takes one reading as the pipeline would.
func (c *collector) emitOne(ctx context.Context) func(core.Reading) error {
	return func(r core.Reading) error {
		if c.gate != nil {
			c.mu.Lock()
			c.held++
			c.notify()
			c.mu.Unlock()
			select {
			case <-c.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.rs = append(c.rs, r)
		c.notify()
		return nil
	}
}

func (c *collector) readings() []core.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]core.Reading(nil), c.rs...)
}

func (c *collector) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		held, ch := c.held, c.change
		c.mu.Unlock()
		if held >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("emit was called %d times, want %d", held, n)
		}
	}
}

func key(r core.Reading) string {
	s := fmt.Sprintf("%s/%s=%v", r.Device, r.Channel, r.Value)
	if r.Unit != "" {
		s += " " + r.Unit
	}
	if r.Quality != core.Good {
		s += fmt.Sprintf(" %s: %v", r.Quality, r.Err)
	}
	return s
}

func keys(rs []core.Reading) string {
	ks := make([]string, len(rs))
	for i, r := range rs {
		ks[i] = key(r)
	}
	sort.Strings(ks)
	return strings.Join(ks, "\n")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newConn(t *testing.T, name, settings string, devices []*core.Device) core.Connector {
	t.Helper()
	c, err := New(core.ConnectorConfig{
		Name: name, Type: "http", Settings: json.RawMessage(settings), Devices: devices,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// writeCert writes a throwaway CA and a server certificate for 127.0.0.1
// into dir and returns the paths of the CA, the certificate and its key.
func writeCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ingest test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	for p, b := range map[string]*pem.Block{
		ca:   {Type: "CERTIFICATE", Bytes: caDER},
		cert: {Type: "CERTIFICATE", Bytes: srvDER},
		key:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}
