package main

import (
	"bytes"
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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// startGateway runs a gateway from the config file until the test ends.
func startGateway(t *testing.T, file string) {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
}

// writeConfig writes an osgate.json for a gateway exporting to br, with
// its RPC service at listen (and more keys in rpcExtra), and returns its
// path and state dir.
func writeConfig(t *testing.T, br *testpeer.Mosquitto, id, listen, rpcExtra string) (file, state string) {
	t.Helper()
	dir := t.TempDir()
	state = filepath.Join(dir, "state")
	doc := fmt.Sprintf(`{"gateway": {"id": %q, "state_dir": %q}, "broker": {"managed": false, "url": %q},
		"rpc": {"listen": %q %s}, "connectors": []}`, id, state, br.URL(), listen, rpcExtra)
	file = filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, state
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = cli(context.Background(), args, nil, &o, &e)
	return code, o.String(), e.String()
}

// TestRPCFromConfig: `osgate rpc -c osgate.json` calls the gateway run with
// that file where its rpc.listen says (a wildcard address through the
// loopback, TLS with the gateway's own certificate) with the local key
// from its state dir, and on failure says what it called and why there.
func TestRPCFromConfig(t *testing.T) {
	t.Setenv("OSGATE_CONFIG", "")
	t.Setenv("OSGATE_RPC_KEY", "")
	t.Setenv("OSGATE_RPC_URL", "")
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})

	t.Run("plain, on every interface", func(t *testing.T) {
		port := testpeer.FreePort(t)
		file, _ := writeConfig(t, br, "gw-plain", fmt.Sprintf("0.0.0.0:%d", port), "")
		startGateway(t, file)
		testpeer.WaitTCP(t, testpeer.Addr(port), 30*time.Second)
		code, out, errOut := runCLI("rpc", "-c", file, "gateway.status")
		if code != 0 || gatewayID(t, out) != "gw-plain" {
			t.Fatalf("exit %d, stdout %s, stderr %s", code, out, errOut)
		}
	})

	t.Run("TLS with a certificate made for a name", func(t *testing.T) {
		port := testpeer.FreePort(t)
		cert, key := selfSigned(t, t.TempDir(), "gw.local")
		file, _ := writeConfig(t, br, "gw-tls", testpeer.Addr(port), fmt.Sprintf(`, "cert_file": %q, "key_file": %q`, cert, key))
		startGateway(t, file)
		testpeer.WaitTCP(t, testpeer.Addr(port), 30*time.Second)
		code, out, errOut := runCLI("rpc", "-c", file, "gateway.status")
		if code != 0 || gatewayID(t, out) != "gw-tls" {
			t.Fatalf("exit %d, stdout %s, stderr %s", code, out, errOut)
		}
	})

	t.Run("nobody listening", func(t *testing.T) {
		port := testpeer.FreePort(t)
		file, state := writeConfig(t, br, "gw-gone", testpeer.Addr(port), "")
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(state, appliance.LocalKeyFile), []byte("local-key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI("rpc", "-c", file, "gateway.status")
		want := fmt.Sprintf("osgate: rpc gateway.status at http://%s/rpc (the URL from rpc.listen in %s, the key from %s): dial tcp",
			testpeer.Addr(port), file, filepath.Join(state, appliance.LocalKeyFile))
		if code != 1 || !strings.HasPrefix(errOut, want) || strings.Contains(errOut, "local-key") {
			t.Fatalf("exit %d, stderr:\n%s\nwant it to start with:\n%s\nand not to show the key", code, errOut, want)
		}
		// -url wins over the file, and says so.
		other := testpeer.Addr(testpeer.FreePort(t))
		code, _, errOut = runCLI("rpc", "-c", file, "-url", "http://"+other, "gateway.status")
		if code != 1 || !strings.Contains(errOut, "at http://"+other+"/rpc (the URL from -url,") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
	})

	t.Run("rpc off", func(t *testing.T) {
		file, _ := writeConfig(t, br, "gw-off", "off", "")
		code, _, errOut := runCLI("rpc", "-c", file, "gateway.status")
		if code != 1 || !strings.Contains(errOut, `rpc.listen is "off": that gateway serves no JSON-RPC over HTTP`) {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
	})
}

func gatewayID(t *testing.T, out string) string {
	t.Helper()
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return ""
	}
	return st.ID
}

// selfSigned writes a self-signed certificate for name (no IP address)
// and its key.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
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
	return certFile, keyFile
}
