package core

import "context"

// A command that takes a while (a bus scan, a Z-Wave inclusion) may say
// where it is with Progress; a caller that wants to show it (the
// technician's page) puts a function into the command's ctx with
// WithProgress. Callers that do not (JSON-RPC over HTTP or MQTT) see
// nothing, and the command runs the same.

type progressKey struct{}

// WithProgress returns ctx with f to receive a command's progress. f is
// called from the command's goroutines, must be safe for concurrent use
// and must not block; each value it gets marshals to a JSON object.
func WithProgress(ctx context.Context, f func(v any)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// Progress hands v (a value that marshals to a JSON object, e.g. how many
// addresses of how many a scan tried) to the function WithProgress put in
// ctx, if any.
func Progress(ctx context.Context, v any) {
	if f, ok := ctx.Value(progressKey{}).(func(any)); ok && f != nil {
		f(v)
	}
}
