package natsrpc

import (
	"context"
	"maps"
)

type headersKey struct{}

// WithHeader returns ctx carrying a NATS header that Call adds to its request, such
// as the id of the API key that made it; the worker reads it with Header.
func WithHeader(ctx context.Context, key, value string) context.Context {
	h := maps.Clone(headersFrom(ctx))
	if h == nil {
		h = map[string]string{}
	}
	h[key] = value
	return context.WithValue(ctx, headersKey{}, h)
}

// Header returns a header of the request being handled (or set by WithHeader).
func Header(ctx context.Context, key string) string {
	return headersFrom(ctx)[key]
}

func headersFrom(ctx context.Context) map[string]string {
	h, _ := ctx.Value(headersKey{}).(map[string]string)
	return h
}
