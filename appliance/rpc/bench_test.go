package rpc

import (
	"context"
	"testing"

	"github.com/osgate/osgate/internal/scope"
)

// BenchmarkCallHTTP is one trivial call round trip through Client, loopback
// HTTP, the key check, dispatch and back.
func BenchmarkCallHTTP(b *testing.B) {
	f := newFixture(b, Options{})
	c := NewClient(f.http.URL, testKey, nil)
	defer c.Close()
	ctx := context.Background()
	params := map[string]float64{"a": 1, "b": 2}
	b.ReportAllocs()
	for b.Loop() {
		var sum float64
		if err := c.Call(ctx, "add", params, &sum); err != nil || sum != 3 {
			b.Fatalf("add = %v, %v", sum, err)
		}
	}
}

// BenchmarkHandle is the transport-independent part of one call.
func BenchmarkHandle(b *testing.B) {
	f := newFixture(b, Options{})
	body := []byte(`{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}`)
	ctx := WithCaller(context.Background(), "bench", scope.Admin)
	b.ReportAllocs()
	for b.Loop() {
		if resp := f.srv.Handle(ctx, body); len(resp) == 0 {
			b.Fatal("no response")
		}
	}
}
