package ingress

import (
	"errors"
	"net/url"
	"slices"
	"testing"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// FuzzDeliveriesQuery: whatever the query string, the listing's parameters parse or
// are refused with a 400 naming a field; what parses is within bounds.
func FuzzDeliveriesQuery(f *testing.F) {
	for _, seed := range []string{
		"", "source=nexthink&outcome=opened&limit=10", "since=2026-01-02T03:04:05Z", "since=2026-01-02T03:04:05.123+01:00",
		"limit=0", "limit=99999999999999999999", "outcome=processed", "cursor=AQ", "colour=red", "source=a&source=b",
		"%zz", "source=%00", "since=0001-01-01T00:00:00Z", "limit=-1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // the server answers a malformed query string before the handler
		}
		q, _, err := parseDeliveriesQuery(v)
		if err != nil {
			var p *problem.Error
			if !errors.As(err, &p) || p.Code != problem.Invalid || p.Field == "" {
				t.Fatalf("%q: got %v, want a 400 naming a field", raw, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > 1000 || (q.Outcome != "" && !slices.Contains(store.WebhookOutcomes(), q.Outcome)) ||
			(q.Source != "" && !sourceName.MatchString(q.Source)) || (q.Since != nil && q.Since.Location().String() != "UTC") {
			t.Fatalf("%q: parsed out of bounds: %+v", raw, q)
		}
	})
}
