package clock

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// queryHTTPS asks the server of rawURL for its time: the Date header of
// the answer to a HEAD request (any status; no credentials are sent). A
// clock that is wrong cannot check a certificate, so the handshake is not
// checked against our clock: the server's certificate chain must instead
// be valid, for the server's name, at the Date it sent. A date earlier
// than notBefore is refused. It returns how far the server's clock is
// ahead of now().
func queryHTTPS(ctx context.Context, rawURL string, base *tls.Config, notBefore time.Time, now func() time.Time) (time.Duration, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return 0, fmt.Errorf("https time source %q: not an https:// URL", rawURL)
	}
	shown := u.Scheme + "://" + u.Host // no path: it may hold a token
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		conf = base.Clone()
	}
	var (
		mu    sync.Mutex
		chain []*x509.Certificate
	)
	// The chain is checked below, at the server's own date.
	conf.InsecureSkipVerify = true
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		mu.Lock()
		chain = cs.PeerCertificates
		mu.Unlock()
		return nil
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableKeepAlives:   true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, rawURL, nil)
	if err != nil {
		return 0, fmt.Errorf("https time source %s: %w", shown, err)
	}
	req.Header.Set("User-Agent", "osgate-clock")
	t1, mono := now(), time.Now()
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a token: it is not repeated
		}
		return 0, fmt.Errorf("https time source %s: %w", shown, err)
	}
	elapsed := time.Since(mono)
	resp.Body.Close()
	ds := resp.Header.Get("Date")
	if ds == "" {
		return 0, fmt.Errorf("https time source %s: the answer has no Date header", shown)
	}
	date, err := http.ParseTime(ds)
	if err != nil {
		return 0, fmt.Errorf("https time source %s: Date %q: %w", shown, ds, err)
	}
	mu.Lock()
	certs := chain
	mu.Unlock()
	if len(certs) == 0 {
		return 0, fmt.Errorf("https time source %s: the server sent no certificate", shown)
	}
	if date.Before(notBefore) {
		return 0, fmt.Errorf("https time source %s: its Date %s is before this build of osgate (%s): ignored", shown, date.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{DNSName: u.Hostname(), Intermediates: inter, CurrentTime: date}
	if base != nil {
		opts.Roots = base.RootCAs
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return 0, fmt.Errorf("https time source %s: its certificate is not valid at its own Date %s: %w", shown, date.UTC().Format(time.RFC3339), err)
	}
	// Date has whole seconds, cut off: the server's time was on average
	// half a second later, at about the middle of the round trip.
	offset := date.Add(500 * time.Millisecond).Sub(t1.Add(elapsed / 2))
	return offset, nil
}
