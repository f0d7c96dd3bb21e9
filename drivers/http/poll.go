package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/redact"
)

// timeoutFallback bounds a poll whose ctx has no deadline (the core always
// sets one; this is a guard).
const timeoutFallback = 30 * time.Second

// poller is the connector in poll mode.
type poller struct {
	name    string
	log     *slog.Logger
	set     settings
	devices map[string]*pollDevice

	mu     sync.Mutex
	client *http.Client // built by the first Poll (New does no I/O)
}

// httpClient returns the connector's client, building it (and reading
// the TLS files) the first time.
func (p *poller) httpClient() (*http.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	tr, err := p.set.Client.Transport()
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = 4
	p.client = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	return p.client, nil
}

// checkRedirect follows up to 10 redirects, never from https to http,
// and never to another host (scheme, host or port) while the request
// carries credentials: net/http would hand the other host every custom
// header, and the query (a token in it) goes wherever the Location says.
// No redirect sends a Referer: it would carry the URL with its query.
func checkRedirect(req *http.Request, via []*http.Request) error {
	req.Header.Del("Referer")
	first := via[0]
	switch {
	case len(via) >= 10:
		return errors.New("more than 10 redirects")
	case first.URL.Scheme == "https" && req.URL.Scheme != "https":
		return errors.New("refusing a redirect from https to http")
	case !sameOrigin(first.URL, req.URL) && carriesCredentials(first):
		return fmt.Errorf("refusing a redirect to another host (%s) while the request carries credentials (auth, headers or a query): poll the final URL directly", req.URL.Host)
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// carriesCredentials says whether a poll request may carry a secret: an
// Authorization header, any header the config added, or a query.
func carriesCredentials(r *http.Request) bool {
	if r.URL.RawQuery != "" {
		return true
	}
	for k := range r.Header {
		switch k {
		case "Accept", "User-Agent":
		default:
			return true
		}
	}
	return false
}

// Poll GETs the device's URL and maps the JSON response to its channels; a
// channel missing from the response is a Bad reading. An error return
// means the device failed as a whole: no answer, a timeout, a status other
// than 2xx, or a body that is not JSON.
func (p *poller) Poll(ctx context.Context, dev *core.Device) ([]core.Reading, error) {
	d, ok := p.devices[dev.Name]
	if !ok {
		return nil, fmt.Errorf("http: device %q is not configured in this connector", dev.Name)
	}
	client, err := p.httpClient()
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeoutFallback)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return nil, fmt.Errorf("http: GET %s: %w", d.display, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "osgate")
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	if a := d.auth; a != nil {
		switch a.Type {
		case "basic":
			req.SetBasicAuth(a.Username, a.Password)
		case "bearer":
			req.Header.Set("Authorization", "Bearer "+a.Token)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("http: GET %s: no complete answer in time: %w", d.display, ctx.Err())
		}
		return nil, fmt.Errorf("http: GET %s: %w", d.display, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.set.MaxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("http: GET %s: body not complete in time: %w", d.display, ctx.Err())
		}
		return nil, fmt.Errorf("http: GET %s: reading the body: %w", d.display, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The server may echo what it was sent.
		return nil, fmt.Errorf("http: GET %s: %s: %s", d.display, resp.Status, redact.Scrub(snippet(body), d.secrets))
	}
	if int64(len(body)) > p.set.MaxBody {
		return nil, fmt.Errorf("http: GET %s: response larger than max_body (%d bytes)", d.display, p.set.MaxBody)
	}
	rs, err := d.mapping.Readings(nil, body, time.Now(), nil)
	if err != nil {
		return nil, fmt.Errorf("http: GET %s: %w", d.display, err)
	}
	return rs, nil
}

// Close releases idle connections.
func (p *poller) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	return nil
}

// unwrapURLError drops *url.Error's "Get \"URL\":" prefix, which would
// print the query string; the caller names the URL without it.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet is the start of an error response, for the error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	s = redact.Clip(s, 200)
	if s == "" {
		return "(empty body)"
	}
	return s
}
