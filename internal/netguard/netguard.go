// Package netguard keeps the URLs other people give dexbridge to call (proactive
// subscriptions) from reaching inside the network: it checks a URL when it is given,
// resolving its host, and checks again the address every connection actually goes
// to, so a name that resolves elsewhere later (DNS rebinding) gains nothing.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength is the longest URL accepted.
const MaxURLLength = 2048

// Policy says which URLs and addresses may be called.
type Policy struct {
	// AllowHTTP accepts plain http URLs besides https.
	AllowHTTP bool
	// Allowed are internal networks the operator lets callers reach anyway.
	Allowed []netip.Prefix
}

// NewPolicy parses the operator's allowed networks (CIDR prefixes).
func NewPolicy(allowHTTP bool, networks []string) (Policy, error) {
	p := Policy{AllowHTTP: allowHTTP}
	for _, n := range networks {
		pf, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			return Policy{}, fmt.Errorf("allowed network %q: %w", n, err)
		}
		p.Allowed = append(p.Allowed, pf.Masked())
	}
	return p, nil
}

// Refused is why a URL or an address may not be called; its text is safe to show
// to whoever gave the URL.
type Refused struct{ Reason string }

func (r *Refused) Error() string { return r.Reason }

func refuse(format string, args ...any) *Refused {
	return &Refused{Reason: fmt.Sprintf(format, args...)}
}

// Special-purpose ranges the standard library's predicates do not name: none of
// them is a public destination.
var special = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // carrier-grade NAT
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, broadcast included
		"64:ff9b::/96",    // NAT64: may translate to an internal IPv4 address
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: embeds an IPv4 address
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Internal reports whether an address is not a public unicast destination, and
// names what it is.
func Internal(a netip.Addr) (string, bool) {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "invalid", true
	case a.IsUnspecified():
		return "unspecified", true
	case a.IsLoopback():
		return "loopback", true
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local", true
	case a.IsMulticast():
		return "multicast", true
	case a.IsPrivate():
		return "private", true
	case !a.IsGlobalUnicast():
		return "not a unicast", true
	}
	for _, p := range special {
		if p.Contains(a) {
			return "reserved", true
		}
	}
	return "", false
}

// CheckAddr is nil when the address may be called: it is public, or internal in a
// network the operator allows.
func (p Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	what, internal := Internal(a)
	if !internal {
		return nil
	}
	for _, pf := range p.Allowed {
		if pf.Contains(a) {
			return nil
		}
	}
	return refuse("%s is a %s address, which subscriptions may not reach", a, what)
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ParseURL checks a URL's form, without resolving it: absolute, https (or http when
// allowed), a host, no user info, no fragment, a valid port.
func (p Policy) ParseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, refuse("required")
	}
	if len(raw) > MaxURLLength {
		return nil, refuse("longer than %d characters", MaxURLLength)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, refuse("holds spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refuse("not a URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case u.Scheme == "http":
		return nil, refuse("want an https URL (plain http is not allowed by proactive.subscriptions.allow_http)")
	default:
		return nil, refuse("want an https URL")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, refuse("want an absolute URL with a host, such as https://bot.example.com/dexbridge")
	}
	if u.User != nil {
		return nil, refuse("user info is not accepted in the URL: deliveries are signed with the subscription's secret")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, refuse("a fragment is not sent to a server: remove it")
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, refuse("port %q is not 1 to 65535", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, refuse("empty port")
	}
	return u, nil
}

// CheckURL checks a URL's form and every address its host resolves to.
func (p Policy) CheckURL(ctx context.Context, r Resolver, raw string) (*url.URL, error) {
	u, err := p.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, refuse("an address with a zone is link-local")
		}
		return u, p.CheckAddr(a)
	}
	if len(host) > 253 {
		return nil, refuse("host name longer than 253 characters")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return nil, refuse("host %s does not resolve", host)
	case err != nil:
		return nil, refuse("host %s could not be resolved", host)
	case len(addrs) == 0:
		return nil, refuse("host %s does not resolve", host)
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return nil, refuse("host %s resolves to %s", host, err)
		}
	}
	return u, nil
}

// control refuses a connection to an address the policy does not allow: it runs
// after resolution, on the address actually dialled.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse("cannot check address %q", address)
	}
	return p.CheckAddr(ap.Addr())
}

// Transport is an HTTP transport that dials only addresses the policy allows, and
// never through a proxy (a proxy would dial for it, unchecked).
func (p Policy) Transport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	return &http.Transport{
		Proxy: nil, DialContext: d.DialContext, ForceAttemptHTTP2: true,
		MaxIdleConns: 100, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second,
	}
}
