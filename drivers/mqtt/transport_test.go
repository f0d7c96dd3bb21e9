package mqtt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestWebSocketAndClientCertificate subscribes through a WebSocket
// listener and through a TLS listener that requires a client certificate
// and whose certificate names only "field.test" (so server_name is
// needed), both of one broker: every message comes through both.
func TestWebSocketAndClientCertificate(t *testing.T) {
	dir := t.TempDir()
	pki := writePKI(t, dir)
	wsPort, tlsPort := testpeer.FreePort(t), testpeer.FreePort(t)
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Extra: fmt.Sprintf(
		"listener %d 127.0.0.1\nprotocol websockets\n"+
			"listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		wsPort, tlsPort, pki.ca, pki.serverCert, pki.serverKey)})
	testpeer.WaitTCP(t, testpeer.Addr(wsPort), 30*time.Second)
	testpeer.WaitTCP(t, testpeer.Addr(tlsPort), 30*time.Second)

	settings := fmt.Sprintf(`{"brokers":[
		{"name":"ws","url":"ws://127.0.0.1:%d/mqtt","tls":false},
		{"name":"cert","url":"ssl://127.0.0.1:%d","ca_file":%q,"cert_file":%q,"key_file":%q,"server_name":"field.test"}
	],"mappings":%s}`, wsPort, tlsPort, pki.ca, pki.clientCert, pki.clientKey, testMappings)
	c := newConnector(t, "transports", settings, nil)
	col := newCollector()
	listen(t, c, col)
	pub := newPublisher(t, broker.URL(), pubOpts{})
	// Each session delivers its own copy: wait for two of one value.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		k := fmt.Sprintf("both/v=%d", i)
		pub.publish("sensors/both/v", fmt.Sprint(i))
		got := false
		col.waitForOrNot(time.Second, func(rs []core.Reading) bool {
			n := 0
			for _, r := range rs {
				if key(r) == k {
					n++
				}
			}
			got = n >= 2
			return got
		})
		if got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no value came through both the WebSocket and the client-certificate session within 60s:\n%s\n%s",
				describe(col.readings(), 20), broker.Log())
		}
	}
}

type pkiFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// writePKI writes a throwaway CA, a server certificate for "field.test"
// only, and a client certificate, all signed by the CA.
func writePKI(t *testing.T, dir string) pkiFiles {
	t.Helper()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "field test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, *ecdsa.PrivateKey) {
		k := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := leaf(2, "field.test", x509.ExtKeyUsageServerAuth, []string{"field.test"})
	cliDER, cliKey := leaf(3, "osgate", x509.ExtKeyUsageClientAuth, nil)
	p := pkiFiles{
		ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server.key"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client.key"),
	}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	writePEM(t, p.serverCert, "CERTIFICATE", srvDER)
	writePEM(t, p.serverKey, "EC PRIVATE KEY", marshalKey(t, srvKey))
	writePEM(t, p.clientCert, "CERTIFICATE", cliDER)
	writePEM(t, p.clientKey, "EC PRIVATE KEY", marshalKey(t, cliKey))
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInsecureOnlyByOptIn: a TLS broker whose CA the connector was not
// given is refused (and the log says why), unless insecure is set.
func TestInsecureOnlyByOptIn(t *testing.T) {
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{TLS: true})
	var logs lockedBuf
	strictC, err := New(core.ConnectorConfig{Name: "verify", Settings: []byte(fmt.Sprintf(
		`{"brokers":[{"url":%q,"max_reconnect_interval":"200ms"}],"mappings":%s}`, broker.URL(), testMappings)),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	refused := newCollector()
	listen(t, strictC.(*Connector), refused)
	insecure := newConnector(t, "insecure", fmt.Sprintf(`{"brokers":[{"url":%q,"insecure":true}],"mappings":%s}`, broker.URL(), testMappings), nil)
	accepted := newCollector()
	listen(t, insecure, accepted)

	pub := newPublisher(t, broker.URL(), pubOpts{ca: broker.CAFile()})
	waitSubscribed(t, accepted, pub, "insecure")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "certificate signed by unknown authority") {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate error logged:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(refused.readings()); n != 0 {
		t.Fatalf("the verifying connector took %d readings from a broker it cannot trust", n)
	}
}

// TestCleanSessionResubscribes: without a persistent session the broker
// forgets the subscriptions when it restarts; the connector subscribes
// again on reconnection.
func TestCleanSessionResubscribes(t *testing.T) {
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	c := newConnector(t, "clean", fmt.Sprintf(`{"brokers":[{"url":%q,"tls":false,"persistent_session":false,"max_reconnect_interval":"200ms"}],"mappings":%s}`, broker.URL(), testMappings), nil)
	col := newCollector()
	listen(t, c, col)
	pub := newPublisher(t, broker.URL(), pubOpts{})
	waitSubscribed(t, col, pub, "before")
	broker.Stop()
	broker.Start() // no persistence: every session and subscription is gone
	waitSubscribed(t, col, pub, "after")
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
