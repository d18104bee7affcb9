package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	xlanguage "golang.org/x/text/language"

	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/netguard"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// public resolves every host to a public address.
type public struct{}

func (public) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}

// FuzzSubscriptionRequest: whatever the body, checking a subscription request gives
// a 422 naming a field or a subscription whose URL is https with a public host, whose
// filters are unique, bounded and well-formed, and whose locale is a canonical tag.
func FuzzSubscriptionRequest(f *testing.F) {
	for _, seed := range []string{
		`{"url":"https://bot.example.com/hook"}`,
		`{"url":"https://bot.example.com/hook","monitors":["Outlook crashes","OUTLOOK CRASHES"],"topics":["outlook"],"instances":["eu"],"locale":"de-ch"}`,
		`{"url":"https://10.0.0.1/","locale":"xx-invalid-tag-!"}`, `{"url":"http://bot.example.com/"}`,
		`{"url":"https://bot.example.com/","monitors":[""]}`, `{"url":"https://bot.example.com/","monitors":["a\u0000b"]}`,
		`{"url":"https://bot.example.com/","topics":["Outlook"]}`, `{"url":"https://bot.example.com/","instances":["mars"]}`,
		`{"url":"https://bot.example.com/","locale":"und"}`, `{"url":"https://[::1]/"}`, `{"url":"https://169.254.169.254/"}`,
		`{"url":"https://bot.example.com/","locale":"zh-Hant-TW-u-ca-chinese"}`,
	} {
		f.Add([]byte(seed))
	}
	s := NewSubscriptions(SubscriptionsOptions{Resolver: public{}, Instances: []string{"eu", "us"}})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req api.NewSubscription
		if json.Unmarshal(raw, &req) != nil {
			return
		}
		n, err := s.check(context.Background(), req)
		if err != nil {
			var p *problem.Error
			if !errors.As(err, &p) || p.Code != problem.Unprocessable || p.Field == "" || p.Detail == "" {
				t.Fatalf("%s: got %#v, want a 422 naming a field", raw, err)
			}
			return
		}
		if !strings.HasPrefix(n.URL, "https://") {
			t.Fatalf("%s: accepted URL %q", raw, n.URL)
		}
		if _, err := (netguard.Policy{}).CheckURL(context.Background(), public{}, n.URL); err != nil {
			t.Fatalf("%s: the stored URL %q does not pass again: %v", raw, n.URL, err)
		}
		seen := map[string]bool{}
		for _, m := range n.Monitors {
			k := "m:" + strings.ToLower(m)
			if m == "" || len(m) > maxMonitorName || seen[k] {
				t.Fatalf("%s: monitors %q", raw, n.Monitors)
			}
			seen[k] = true
		}
		for _, tp := range n.Topics {
			if !topicFilter.MatchString(tp) || seen["t:"+tp] {
				t.Fatalf("%s: topics %q", raw, n.Topics)
			}
			seen["t:"+tp] = true
		}
		for _, in := range n.Instances {
			if (in != "eu" && in != "us") || seen["i:"+in] {
				t.Fatalf("%s: instances %q", raw, n.Instances)
			}
			seen["i:"+in] = true
		}
		if tag, err := xlanguage.Parse(n.Locale); err != nil || tag.String() != n.Locale {
			t.Fatalf("%s: locale %q is not canonical", raw, n.Locale)
		}
	})
}
