package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// fixed resolves every host to the same addresses.
type fixed []netip.Addr

func (f fixed) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) { return f, nil }

var public = fixed{netip.MustParseAddr("93.184.215.14")}

func TestCheckURLRefusesInternalAddresses(t *testing.T) {
	ctx := context.Background()
	strict := Policy{}
	for _, raw := range []string{
		"https://127.0.0.1/hook", "https://127.8.9.10:8443/hook", "https://10.1.2.3/hook", "https://172.16.0.1/",
		"https://192.168.1.1/", "https://169.254.169.254/latest/meta-data", "https://[::1]/hook", "https://[fe80::1]/",
		"https://[fc00::1]/", "https://0.0.0.0/", "https://[::]/", "https://224.0.0.1/", "https://100.64.0.1/",
		"https://[::ffff:127.0.0.1]/", "https://[64:ff9b::a00:1]/", "https://255.255.255.255/",
		"https://localhost/hook", // resolves to loopback
	} {
		_, err := strict.CheckURL(ctx, net.DefaultResolver, raw)
		var r *Refused
		if !errors.As(err, &r) {
			t.Errorf("%s: got %v, want refused", raw, err)
		}
	}
	// A host that resolves to one internal address among public ones is refused.
	mixed := fixed{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("10.0.0.7")}
	if _, err := strict.CheckURL(ctx, mixed, "https://bot.example.com/hook"); err == nil || !strings.Contains(err.Error(), "10.0.0.7") {
		t.Errorf("mixed resolution: got %v, want the internal address named", err)
	}
	if u, err := strict.CheckURL(ctx, public, "https://bot.example.com:8443/hook?token=x"); err != nil || u.Host != "bot.example.com:8443" {
		t.Errorf("public: got %v %v", u, err)
	}
}

func TestCheckURLForm(t *testing.T) {
	ctx := context.Background()
	for raw, want := range map[string]string{
		"":                                     "required",
		"http://bot.example.com/":              "https",
		"ftp://bot.example.com/":               "https",
		"https:///path":                        "host",
		"https:bot.example.com":                "host",
		"https://u:p@bot.example.com/":         "user info",
		"https://bot.example.com/#x":           "fragment",
		"https://bot.example.com:0/":           "port",
		"https://bot.example.com:99999/":       "port",
		"https://bot.example.com/ a":           "spaces",
		"https://" + strings.Repeat("a", 3000): "longer",
	} {
		_, err := Policy{}.CheckURL(ctx, public, raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", raw, err, want)
		}
	}
	if _, err := (Policy{AllowHTTP: true}).CheckURL(ctx, public, "http://bot.example.com/"); err != nil {
		t.Errorf("http allowed: got %v", err)
	}
	if _, err := (Policy{}).CheckURL(ctx, net.DefaultResolver, "https://no-such-host.invalid/"); err == nil || !strings.Contains(err.Error(), "resolve") {
		t.Errorf("unresolvable: got %v", err)
	}
}

func TestAllowedNetworks(t *testing.T) {
	p, err := NewPolicy(false, []string{"10.20.0.0/16", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	for a, ok := range map[string]bool{"10.20.3.4": true, "10.21.0.1": false, "::1": true, "127.0.0.1": false, "8.8.8.8": true} {
		if got := p.CheckAddr(netip.MustParseAddr(a)) == nil; got != ok {
			t.Errorf("%s: allowed %v, want %v", a, got, ok)
		}
	}
	if _, err := NewPolicy(false, []string{"intranet"}); err == nil {
		t.Error("a name is not a network")
	}
}

// TestTransportChecksTheDialledAddress: a name that passed the check (here the
// resolver lied, as a rebinding DNS server would) still cannot reach loopback,
// because the transport checks the address it connects to.
func TestTransportChecksTheDialledAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	raw := "http://localhost:" + port + "/"
	strict := Policy{AllowHTTP: true}
	if _, err := strict.CheckURL(context.Background(), public, raw); err != nil {
		t.Fatalf("check with the lying resolver: %v", err)
	}
	c := &http.Client{Transport: strict.Transport()}
	_, err := c.Get(raw)
	var r *Refused
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want the connection refused by the policy", err)
	}
	allowed, _ := NewPolicy(true, []string{"127.0.0.0/8", "::1/128"})
	resp, err := (&http.Client{Transport: allowed.Transport()}).Get(raw)
	if err != nil {
		t.Fatalf("allowed network: %v", err)
	}
	resp.Body.Close()
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://bot.example.com/hook", "http://10.0.0.1/", "https://[::1]:443/", "https://[fe80::1%25eth0]/",
		"https://u@h/", "https://h:/", "https:h", "//h/p", "https://%31%32%37.0.0.1/", "https://0x7f.1/", "https://2130706433/"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowHTTP bool) {
		p := Policy{AllowHTTP: allowHTTP}
		// Every name resolves to loopback: only an accepted IP literal can pass.
		loop := fixed{netip.MustParseAddr("127.0.0.1")}
		u, err := p.CheckURL(context.Background(), loop, raw)
		if err != nil {
			var r *Refused
			if !errors.As(err, &r) {
				t.Fatalf("%q: got %T %v, want a *Refused", raw, err, err)
			}
			return
		}
		if u.Scheme != "https" && (u.Scheme != "http" || !allowHTTP) {
			t.Fatalf("%q: accepted scheme %q", raw, u.Scheme)
		}
		a, perr := netip.ParseAddr(u.Hostname())
		if perr != nil {
			t.Fatalf("%q: accepted host %q that resolves to loopback", raw, u.Hostname())
		}
		if _, internal := Internal(a); internal {
			t.Fatalf("%q: accepted internal address %s", raw, a)
		}
		// What was accepted is what a client would call.
		if again, err := url.Parse(raw); err != nil || again.Hostname() != u.Hostname() {
			t.Fatalf("%q: reparsed as %v %v", raw, again, err)
		}
	})
}
