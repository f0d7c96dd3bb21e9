package rpc

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newHTTPServer(t testing.TB, srv *Server) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func callCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClient(t *testing.T) {
	f := newFixture(t, Options{})
	for _, url := range []string{f.http.URL, f.http.URL + "/", f.http.URL + "/rpc"} {
		c := NewClient(url, testKey, nil)
		defer c.Close()
		var sum float64
		if err := c.Call(callCtx(t), "add", map[string]float64{"a": 40, "b": 2}, &sum); err != nil || sum != 42 {
			t.Fatalf("%s: add = %v, %v; want 42", url, sum, err)
		}
	}
	c := NewClient(f.http.URL, testKey, nil)
	defer c.Close()
	if err := c.Call(callCtx(t), "note", nil, nil); err != nil {
		t.Fatalf("call without params or result: %v", err)
	}

	var rerr *Error
	err := c.Call(callCtx(t), "fail", nil, nil)
	if !errors.As(err, &rerr) || rerr.Code != CodeServerError || rerr.Message != "meter-1 unreachable" {
		t.Errorf("fail: %v; want *Error -32000 meter-1 unreachable", err)
	}
	err = c.Call(callCtx(t), "add", map[string]any{"a": 1}, nil)
	if !errors.As(err, &rerr) || rerr.Code != CodeInvalidParams || !strings.Contains(err.Error(), "params.b: is required") {
		t.Errorf("add without b: %v", err)
	}
	err = c.Call(callCtx(t), "nope", nil, nil)
	if !errors.As(err, &rerr) || rerr.Code != CodeMethodNotFound {
		t.Errorf("nope: %v", err)
	}
	var wrongType struct{ X int }
	if err := c.Call(callCtx(t), "add", map[string]int{"a": 1, "b": 1}, &wrongType); err == nil || !strings.Contains(err.Error(), "decode result") {
		t.Errorf("decoding a number into a struct: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	f := newFixture(t, Options{MaxBody: 128})
	for _, key := range []string{"", "not-the-key"} {
		c := NewClient(f.http.URL, key, nil)
		err := c.Call(callCtx(t), "add", nil, nil)
		c.Close()
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "401") {
			t.Errorf("key %q: %v; want ErrUnauthorized mentioning 401", key, err)
		}
		if key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}

	c := NewClient(f.http.URL, testKey, nil)
	defer c.Close()
	var rerr *Error
	err := c.Call(callCtx(t), "echo", map[string]string{"pad": strings.Repeat("x", 200)}, nil)
	if !errors.As(err, &rerr) || rerr.Code != CodeInvalidRequest || !strings.Contains(err.Error(), "HTTP 413") {
		t.Errorf("oversized call: %v; want HTTP 413 wrapping *Error -32600", err)
	}

	for _, url := range []string{"ftp://x/rpc", "://"} {
		if err := NewClient(url, testKey, nil).Call(callCtx(t), "add", nil, nil); err == nil {
			t.Errorf("URL %q accepted", url)
		}
	}

	// A server that is gone is a clear transport error.
	gone := httptest.NewServer(nil)
	url := gone.URL
	gone.Close()
	if err := NewClient(url, testKey, nil).Call(callCtx(t), "add", nil, nil); err == nil || !strings.Contains(err.Error(), "rpc: add:") {
		t.Errorf("call to a closed server: %v", err)
	}
}

func TestClientHonoursContext(t *testing.T) {
	f := newFixture(t, Options{})
	c := NewClient(f.http.URL, testKey, nil)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Call(ctx, "add", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v; want context.Canceled", err)
	}
}
