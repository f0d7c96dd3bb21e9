package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
)

// ErrUnauthorized is returned (wrapped) by Call when the server answers
// HTTP 401: the key is missing, malformed or not one of its keys.
var ErrUnauthorized = errors.New("the server refused the API key")

// maxResponse bounds a response body the client reads.
const maxResponse = 64 << 20

// Client calls a Server's methods over HTTP(S).
type Client struct {
	url    string
	urlErr error
	key    string
	hc     *http.Client
	id     atomic.Uint64
}

// NewClient returns a Client for the service at rawURL: the /rpc endpoint,
// or the service root ("https://gw.local:8080"), to which /rpc is added.
// tlsConfig may be nil (system roots). key is sent as "Authorization:
// Bearer KEY"; an empty key sends none.
func NewClient(rawURL, key string, tlsConfig *tls.Config) *Client {
	c := &Client{key: key}
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		c.urlErr = fmt.Errorf("rpc: service URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		c.urlErr = fmt.Errorf("rpc: service URL %q: scheme must be http or https", rawURL)
	default:
		if u.Path == "" || u.Path == "/" {
			u.Path = "/rpc"
		}
		c.url = u.String()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	c.hc = &http.Client{Transport: tr}
	return c
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Call calls method with params (nil for none; encoded as JSON) and decodes
// the result into result (a pointer, or nil to discard it). A JSON-RPC error
// is returned as *Error; HTTP 401 as an error wrapping ErrUnauthorized.
// ctx bounds the whole call.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	if c.urlErr != nil {
		return c.urlErr
	}
	id := c.id.Add(1)
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
		ID      uint64 `json:"id"`
	}{"2.0", method, params, id})
	if err != nil {
		return fmt.Errorf("rpc: %s: encode params: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("rpc: %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("rpc: %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("rpc: %s: read response: %w", method, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("rpc: %s: response larger than %d bytes", method, maxResponse)
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
		ID     json.RawMessage `json:"id"`
	}
	decodeErr := json.Unmarshal(data, &r)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("rpc: %s: %w (HTTP 401)", method, ErrUnauthorized)
	case resp.StatusCode != http.StatusOK && decodeErr == nil && r.Error != nil:
		return fmt.Errorf("rpc: %s: HTTP %d: %w", method, resp.StatusCode, r.Error)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("rpc: %s: HTTP %s: %.200q", method, resp.Status, data)
	case decodeErr != nil:
		return fmt.Errorf("rpc: %s: decode response: %w", method, decodeErr)
	case r.Error != nil:
		return r.Error
	case string(r.ID) != strconv.FormatUint(id, 10):
		return fmt.Errorf("rpc: %s: response id %.32s does not match request id %d", method, r.ID, id)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("rpc: %s: decode result: %w", method, err)
	}
	return nil
}
