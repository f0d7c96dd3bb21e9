package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func tlsConfig(tb testing.TB, caFile string) *tls.Config {
	tb.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		tb.Fatalf("no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: pool}
}
