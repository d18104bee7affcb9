package nexthink

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
)

const (
	callToken = "oauth.token"
	// tokenRenewEarly is how long before expiry a token is renewed; a short-lived
	// token is renewed at 80% of its lifetime instead.
	tokenRenewEarly = 120 * time.Second
	// defaultTokenTTL applies when the answer has no expires_in (Nexthink: 900 s).
	defaultTokenTTL = 900 * time.Second
	// refusedFor is how long a refusal of the credentials is remembered, so a bad
	// secret does not send every call to the token endpoint.
	refusedFor = 10 * time.Second
	tokenBody  = "grant_type=client_credentials&scope=service:integration"
)

// tokenSource fetches and caches the instance's bearer token. Concurrent callers that
// find no fresh token share one fetch.
type tokenSource struct {
	c        *shared
	url      string
	clientID string
	secret   config.Secret

	mu        sync.Mutex
	tok       string
	renewAt   time.Time
	refused   *Error
	refusedAt time.Time
	flight    *tokenFlight
}

// tokenFlight is a fetch in progress; done closes when tok or err is set.
type tokenFlight struct {
	done chan struct{}
	tok  string
	err  *Error
}

// get returns a fresh token, fetching one when the cached one is due for renewal.
func (s *tokenSource) get(ctx context.Context) (string, *Error) {
	s.mu.Lock()
	now := s.c.now()
	if s.tok != "" && now.Before(s.renewAt) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	if s.refused != nil && now.Sub(s.refusedAt) < refusedFor {
		err := s.refused
		s.mu.Unlock()
		return "", err
	}
	f := s.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		// The fetch belongs to the flight, not to the caller that started it: it ends
		// within callTimeout whether or not anyone still waits.
		go s.run(f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", s.c.ctxError(ctx, callToken, ctx.Err())
	}
}

// drop forgets tok after the instance refused it (401), unless it was already replaced.
func (s *tokenSource) drop(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == tok {
		s.tok = ""
	}
}

func (s *tokenSource) run(f *tokenFlight) {
	ctx, cancel := context.WithTimeout(context.Background(), s.c.callTimeout)
	defer cancel()
	issued := s.c.now()
	tok, ttl, err := s.fetch(ctx)
	s.mu.Lock()
	if err == nil {
		s.tok, s.renewAt, s.refused = tok, issued.Add(ttl-min(tokenRenewEarly, ttl/5)), nil
	} else if err.Status == http.StatusUnauthorized || err.Status == http.StatusBadRequest {
		s.refused, s.refusedAt = err, s.c.now()
	}
	s.flight = nil
	s.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// fetch makes one token request (client credentials grant, Basic authentication).
func (s *tokenSource) fetch(ctx context.Context) (string, time.Duration, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(tokenBody))
	if err != nil {
		return "", 0, &Error{Instance: s.c.name, Call: callToken, Code: CodeInvalid, Message: "cannot build the token request"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.clientID, s.secret.Reveal())
	start := time.Now()
	resp, err := s.c.http.Do(req)
	if err != nil {
		s.c.record(callToken, "POST /oauth2/default/v1/token", 0, time.Since(start), 1)
		return "", 0, s.c.transportError(ctx, callToken, "", err)
	}
	defer drain(resp.Body)
	s.c.record(callToken, "POST /oauth2/default/v1/token", resp.StatusCode, time.Since(start), 1)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := s.c.statusError(callToken, "", resp.StatusCode, retryAfter(resp.Header, time.Now()), body)
		if resp.StatusCode == http.StatusUnauthorized {
			e.Message = "the token endpoint refused the client credentials (client id " + s.clientID + ")"
		}
		return "", 0, e
	}
	var v struct {
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(io.LimitReader(resp.Body, maxErrorBody), &v); err != nil || v.AccessToken == "" ||
		!strings.EqualFold(v.TokenType, "bearer") {
		return "", 0, &Error{Instance: s.c.name, Call: callToken, Status: resp.StatusCode, Code: CodeBadResponse,
			Message: "the token answer holds no bearer token"}
	}
	ttl := time.Duration(v.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	s.c.log.Info("nexthink token fetched", "call", callToken, "expires_in_s", int64(ttl.Seconds()),
		"duration_ms", time.Since(start).Milliseconds())
	return v.AccessToken, ttl, nil
}
