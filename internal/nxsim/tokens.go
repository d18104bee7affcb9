package nxsim

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// tokenStore issues and checks a tenant's opaque bearer tokens.
type tokenStore struct {
	ttl   time.Duration
	clock func() time.Time
	creds map[string]Credential

	mu     sync.Mutex
	tokens map[string]issued
}

type issued struct {
	client  string
	perms   []string
	expires time.Time
}

func newTokenStore(creds []Credential, ttl time.Duration, clock func() time.Time) *tokenStore {
	m := make(map[string]Credential, len(creds))
	for _, c := range creds {
		m[c.ClientID] = c
	}
	return &tokenStore{ttl: ttl, clock: clock, creds: m, tokens: map[string]issued{}}
}

// issue returns a new token for a valid client id and secret.
func (s *tokenStore) issue(id, secret string) (string, bool) {
	c, ok := s.creds[id]
	if !ok || c.ClientSecret != secret {
		return "", false
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.tokens {
		if !now.Before(v.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = issued{client: id, perms: c.Permissions, expires: now.Add(s.ttl)}
	return tok, true
}

// check returns the permissions of a live token.
func (s *tokenStore) check(tok string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.tokens[tok]
	if !ok || !s.clock().Before(v.expires) {
		return nil, false
	}
	return v.perms, true
}

// expireAll invalidates every token (control API).
func (s *tokenStore) expireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// handleToken serves POST /oauth2/default/v1/token (client credentials grant).
func (t *tenant) handleToken(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Content-Type must be application/x-www-form-urlencoded"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed form body"})
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "grant_type must be client_credentials"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	tok, ok := t.tokens.issue(id, secret)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="nxsim"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "Invalid value for 'client_id' parameter or client authentication failed."})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":   "Bearer",
		"expires_in":   int(t.tokens.ttl.Seconds()),
		"access_token": tok,
		"scope":        "service:integration",
	})
}

// authorize checks the bearer token of r for permission perm, writing 401 or 403 in
// g's error shape when it fails.
func (t *tenant) authorize(w http.ResponseWriter, r *http.Request, g group, perm string) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "bearer ")
	}
	perms, live := t.tokens.check(strings.TrimSpace(tok))
	if !ok || !live {
		w.Header().Set("WWW-Authenticate", `Bearer realm="nxsim"`)
		writeGroupError(w, g, http.StatusUnauthorized, "UNAUTHORIZED", "No valid authentication credentials.")
		return false
	}
	if !slices.Contains(perms, perm) {
		writeGroupError(w, g, http.StatusForbidden, "FORBIDDEN", "No permission - the credential lacks the "+perm+" permission.")
		return false
	}
	return true
}
