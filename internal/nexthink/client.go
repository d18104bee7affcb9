package nexthink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nql"
)

// Defaults of Config.
const (
	DefaultMaxWait       = 2 * time.Second
	DefaultRetryFor      = 15 * time.Second
	DefaultCallTimeout   = 30 * time.Second
	DefaultExportTimeout = 30 * time.Minute
)

// Config configures the client of one instance.
type Config struct {
	Instance     string // name, in every error and log line
	APIURL       string // https://<instance>.api.<region>.nexthink.cloud (or nxsim)
	TokenURL     string // https://<instance>-login.<region>.nexthink.cloud (or nxsim)
	ClientID     string
	ClientSecret config.Secret
	NQL          Limiter       // MAX_ENGINE_REQUESTS_PER_SECOND for this instance; nil means unlimited
	Actions      Limiter       // MAX_PORTAL_REQUESTS_PER_SECOND for this instance; nil means unlimited
	HTTPClient   *http.Client  // default: connect, TLS and header timeouts, proxy from environment
	MaxWait      time.Duration // how long a call may wait for the limiter before it is rate limited (default 2s)
	RetryFor     time.Duration // bounded total time of retries per call (default 15s)
	// CallTimeout bounds one attempt of an API call (default 30s); the results file
	// download is bounded by the context only, since it streams.
	CallTimeout time.Duration
	// ExportTimeout bounds an export from submit to COMPLETED (default 30m).
	ExportTimeout time.Duration
	Observe       func(Call) // optional: called after every HTTP attempt (metrics)
	Log           *slog.Logger
	// Clock is the time source of the token cache (default time.Now); tests share one
	// with nxsim to expire tokens without sleeping.
	Clock func() time.Time
}

// Call describes one HTTP attempt, for Config.Observe.
type Call struct {
	Instance string
	Name     string        // "nql.execute", "oauth.token", ...
	Endpoint string        // "POST /api/v2/nql/execute"
	Status   int           // HTTP status; 0 when no answer arrived
	Duration time.Duration //
	Attempt  int           // 1 for the first attempt of a call
}

// Client calls one Nexthink instance. It is safe for concurrent use.
type Client struct {
	*shared
	maxWait  time.Duration
	retryFor time.Duration
}

// shared is what every policy view of a client holds in common.
type shared struct {
	name          string
	apiURL        *url.URL
	http          *http.Client
	nql, actions  Limiter
	tokens        *tokenSource
	gate          gate // shared by every policy view: the instance's health as this process sees it
	callTimeout   time.Duration
	exportTimeout time.Duration
	observe       func(Call)
	log           *slog.Logger
	now           func() time.Time
	times         timeColumns // which columns of a result are date-times
}

// New checks cfg and returns a client; it makes no call.
func New(cfg Config) (*Client, error) {
	if cfg.Instance == "" {
		return nil, errors.New("nexthink client: instance name is empty")
	}
	apiURL, err := baseURL(cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("nexthink client %s: api url: %w", cfg.Instance, err)
	}
	tokenURL, err := baseURL(cfg.TokenURL)
	if err != nil {
		return nil, fmt.Errorf("nexthink client %s: token url: %w", cfg.Instance, err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("nexthink client %s: client id and client secret are required", cfg.Instance)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NQL == nil {
		cfg.NQL = unlimited{}
	}
	if cfg.Actions == nil {
		cfg.Actions = unlimited{}
	}
	s := &shared{
		name: cfg.Instance, apiURL: apiURL, http: cfg.HTTPClient, nql: cfg.NQL, actions: cfg.Actions,
		callTimeout:   orDefault(cfg.CallTimeout, DefaultCallTimeout),
		exportTimeout: orDefault(cfg.ExportTimeout, DefaultExportTimeout),
		observe:       cfg.Observe, log: cfg.Log.With("instance", cfg.Instance), now: cfg.Clock,
		times: timeColumns{schema: nql.DefaultSchema()},
	}
	s.tokens = &tokenSource{c: s, url: tokenURL.JoinPath("oauth2/default/v1/token").String(),
		clientID: cfg.ClientID, secret: cfg.ClientSecret}
	return &Client{shared: s,
		maxWait:  orDefault(cfg.MaxWait, DefaultMaxWait),
		retryFor: orDefault(cfg.RetryFor, DefaultRetryFor)}, nil
}

// WithPolicy returns a client with the same token cache, limiters and HTTP client but
// other patience: discovery may wait longer for the limiter than a chatbot. A value
// that is not positive keeps the current one.
func (c *Client) WithPolicy(maxWait, retryFor time.Duration) *Client {
	v := *c
	if maxWait > 0 {
		v.maxWait = maxWait
	}
	if retryFor > 0 {
		v.retryFor = retryFor
	}
	return &v
}

// CloseIdleConnections closes the idle keep-alive connections of the HTTP client
// (after a configuration reload replaced this client, or in tests).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Instance is the instance's name.
func (c *Client) Instance() string { return c.name }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// baseURL parses an absolute http(s) base URL without query or fragment.
func baseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(s), "/"))
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("want an absolute http or https URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("want no user info, query or fragment")
	}
	return u, nil
}

// defaultHTTPClient has no overall timeout (results files stream for as long as they
// take); connect, TLS and response-header timeouts bound the wait for an answer.
func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   32,
	}}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
