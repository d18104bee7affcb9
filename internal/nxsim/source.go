package nxsim

import (
	"context"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// source adapts a fleet to nql.Source and nql.Indexer.
type source struct{ f *fleet.Fleet }

var (
	_ nql.Source         = source{}
	_ nql.Indexer        = source{}
	_ nql.RelatedIndexer = source{}
)

func (s source) Scan(ctx context.Context, table string, w nql.Window, fn func(nql.Row) error) error {
	return s.f.Scan(ctx, table, w.From, w.To, func(r fleet.Row) error { return fn(r) })
}

func (s source) Related(ctx context.Context, obj nql.Row, table string, w nql.Window, fn func(nql.Row) error) error {
	return s.f.Related(ctx, obj, table, w.From, w.To, func(r fleet.Row) error { return fn(r) })
}

func (s source) Lookup(ctx context.Context, table, field string, values []string) ([]nql.Row, bool) {
	rows, ok := s.f.Lookup(ctx, table, field, values)
	if !ok {
		return nil, false
	}
	out := make([]nql.Row, len(rows))
	for k, r := range rows {
		out[k] = r
	}
	return out, true
}

func (s source) LookupRelated(ctx context.Context, table, related, field string, values []string) ([]nql.Row, bool) {
	rows, ok := s.f.LookupRelated(ctx, table, related, field, values)
	if !ok {
		return nil, false
	}
	out := make([]nql.Row, len(rows))
	for k, r := range rows {
		out[k] = r
	}
	return out, true
}
