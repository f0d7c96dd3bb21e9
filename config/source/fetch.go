package source

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/sign"
)

// maxDocument bounds a pulled document or signature.
const maxDocument = 8 << 20

// fetcher pulls one gateway's document and its signature. Its conditional
// state (etag, lastModified) is that of the last document it was told to
// remember; only the goroutine calling Source.Next uses it.
type fetcher struct {
	client *http.Client
	docURL string
	sigURL string
	// docShown and sigShown are the URLs without query and user info,
	// for errors and logs (a presigned URL's query is a credential).
	docShown, sigShown string
	token              string
	pub                ed25519.PublicKey // nil: signatures are not fetched
	etag               string
	lastModified       string
}

// pulled is the answer to one fetch.
type pulled struct {
	notModified  bool
	doc, sig     []byte
	etag         string
	lastModified string
}

func newFetcher(r *RemoteSettings, gateway string) (*fetcher, error) {
	f := &fetcher{
		docURL: expand(r.URL, gateway),
		sigURL: expand(r.signatureURL(), gateway),
		token:  r.BearerToken,
	}
	f.docShown, f.sigShown = redact.URL(f.docURL), redact.URL(f.sigURL)
	if r.PublicKey != "" {
		pub, err := sign.ParsePublicKey(r.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("config remote: %w", err)
		}
		f.pub = pub
	}
	tr, err := r.Client.Transport()
	if err != nil {
		return nil, fmt.Errorf("config remote: %w", err)
	}
	f.client = &http.Client{Transport: tr}
	return f, nil
}

// fetch asks for the document, conditionally on the remembered state, and
// for a 200 also fetches its signature when a key is configured (a 404
// there leaves sig empty: unsigned).
func (f *fetcher) fetch(ctx context.Context) (pulled, error) {
	req, err := f.request(ctx, f.docURL)
	if err != nil {
		return pulled{}, err
	}
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	if f.lastModified != "" {
		req.Header.Set("If-Modified-Since", f.lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return pulled{}, fmt.Errorf("fetch %s: %w", f.docShown, bareURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return pulled{notModified: true, etag: f.etag, lastModified: f.lastModified}, nil
	case http.StatusOK:
	default:
		return pulled{}, fmt.Errorf("fetch %s: HTTP %s", f.docShown, resp.Status)
	}
	doc, err := readLimited(resp.Body)
	if err != nil {
		return pulled{}, fmt.Errorf("fetch %s: %w", f.docShown, bareURLError(err))
	}
	p := pulled{doc: doc, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}
	if f.pub != nil {
		if p.sig, err = f.signature(ctx); err != nil {
			return pulled{}, err
		}
	}
	return p, nil
}

func (f *fetcher) signature(ctx context.Context) ([]byte, error) {
	req, err := f.request(ctx, f.sigURL)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch signature %s: %w", f.sigShown, bareURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusForbidden:
		// Object stores answer 403 for a missing key without list rights.
		return nil, nil
	default:
		return nil, fmt.Errorf("fetch signature %s: HTTP %s", f.sigShown, resp.Status)
	}
	sig, err := readLimited(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fetch signature %s: %w", f.sigShown, bareURLError(err))
	}
	return sig, nil
}

// bareURLError drops *url.Error's "Get \"URL\":" prefix, which would show
// the query; the caller names the URL without it.
func bareURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (f *fetcher) request(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	req.Header.Set("Cache-Control", "no-cache")
	return req, nil
}

// remember makes the next fetch conditional on p's validators.
func (f *fetcher) remember(p pulled) {
	f.etag, f.lastModified = p.etag, p.lastModified
}

// forget makes the next fetch unconditional.
func (f *fetcher) forget() { f.etag, f.lastModified = "", "" }

var errTooLarge = errors.New("larger than 8 MiB")

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxDocument {
		return nil, errTooLarge
	}
	return b, nil
}

// Endpoint is the gateway's document URL ({gateway} replaced) and the TLS
// settings the fetcher uses for it: what else asks the fleet server
// something (the clock, for its Date) needs.
func (r *RemoteSettings) Endpoint(gateway string) (string, *tls.Config, error) {
	c, err := r.Client.Load()
	if err != nil {
		return "", nil, fmt.Errorf("config remote: %w", err)
	}
	return expand(r.URL, gateway), c, nil
}
