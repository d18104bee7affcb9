package ingress

import (
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

type createKeyRequest struct {
	Name               string     `json:"name"`
	Scopes             []string   `json:"scopes"`
	ExpiresAt          *time.Time `json:"expires_at"`
	ExpiresIn          string     `json:"expires_in"`
	RateLimitPerSecond *float64   `json:"rate_limit_per_second"`
	EmployeeUPN        string     `json:"employee_upn"`
}

// view is a key as the API shows it.
func view(k store.APIKey, now time.Time) api.APIKey {
	status := "active"
	switch {
	case k.RevokedAt != nil:
		status = "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		status = "expired"
	}
	return api.APIKey{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Status: status, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt, RateLimitPerSecond: k.RateLimitPerSecond,
		EmployeeUPN: k.EmployeeUPN}
}

// keyName is a key's name; its length (1 to 100 runes) is checked apart, as a
// counted repetition of a Unicode class compiles to a copy of the class per repetition.
var keyName = regexp.MustCompile(`^[\p{L}\p{N} ._:@/-]+$`)

// newKey validates a creation request.
func newKey(req createKeyRequest, who string, now time.Time) (auth.NewKey, error) {
	if utf8.RuneCountInString(req.Name) > 100 || !keyName.MatchString(req.Name) {
		return auth.NewKey{}, problem.InvalidField("name", "a name of 1 to 100 letters, digits, spaces and ._:@/- is required")
	}
	scopes, err := auth.ParseScopes(req.Scopes)
	if err != nil {
		return auth.NewKey{}, problem.InvalidField("scopes", "%v", err)
	}
	if field, err := auth.CheckDelegate(scopes, req.EmployeeUPN); err != nil {
		return auth.NewKey{}, problem.InvalidField(field, "%v", err)
	}
	n := auth.NewKey{Name: req.Name, Scopes: scopes, CreatedBy: who, ExpiresAt: req.ExpiresAt, EmployeeUPN: req.EmployeeUPN}
	switch {
	case req.ExpiresAt != nil && req.ExpiresIn != "":
		return auth.NewKey{}, problem.InvalidField("expires_in", "give expires_at or expires_in, not both")
	case req.ExpiresIn != "":
		d, err := config.ParseDuration(req.ExpiresIn, false)
		if err != nil || d <= 0 {
			return auth.NewKey{}, problem.InvalidField("expires_in", "want a positive duration such as 720h or 30d")
		}
		t := now.Add(d).UTC()
		n.ExpiresAt = &t
	case req.ExpiresAt != nil && !req.ExpiresAt.After(now):
		return auth.NewKey{}, problem.InvalidField("expires_at", "the expiry is in the past")
	}
	if r := req.RateLimitPerSecond; r != nil && (*r <= 0 || *r > 1e6) {
		return auth.NewKey{}, problem.InvalidField("rate_limit_per_second", "want a number above 0")
	}
	n.RateLimitPerSecond = req.RateLimitPerSecond
	return n, nil
}

func (h *handlers) createKey(w http.ResponseWriter, r *http.Request, who string) {
	var req createKeyRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := newKey(req, who, time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	secret, key, err := h.opts.Keys.Create(r.Context(), n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.Log.InfoContext(r.Context(), "api key created", "key_id", key.ID, "created_by", who, "scopes", key.Scopes)
	w.Header().Set("Location", "/api/v1/api-keys/"+key.ID)
	writeJSON(w, http.StatusCreated, api.NewAPIKey{APIKey: view(key, time.Now()), Key: secret})
}

// createLegacyKey answers the V6 SDK's POST /v1/api_key: no body, a key that may do
// what V6 keys could (read, diagnose, remediate).
func (h *handlers) createLegacyKey(w http.ResponseWriter, r *http.Request, who string) {
	n := auth.NewKey{Name: "legacy " + who, Scopes: []string{string(auth.Read), string(auth.Diagnose), string(auth.Remediate)}, CreatedBy: who}
	secret, key, err := h.opts.Keys.Create(r.Context(), n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.Log.InfoContext(r.Context(), "api key created", "key_id", key.ID, "created_by", who, "legacy", true)
	writeJSON(w, http.StatusCreated, api.LegacyAPIKey{Secret: secret, APIKey: view(key, time.Now()), Key: secret})
}

func (h *handlers) listKeys(w http.ResponseWriter, r *http.Request, _ string) {
	keys, err := h.opts.Keys.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := time.Now()
	out := make([]api.APIKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, view(k, now))
	}
	writeJSON(w, http.StatusOK, api.APIKeys{APIKeys: out})
}

var keyID = regexp.MustCompile(`^key_[0-9a-f]{16}$`)

func (h *handlers) revokeKey(w http.ResponseWriter, r *http.Request, who string) {
	id := mux.Vars(r)["id"]
	if !keyID.MatchString(id) {
		h.fail(w, r, problem.InvalidField("id", "an API key id looks like key_0123456789abcdef"))
		return
	}
	key, err := h.opts.Keys.Revoke(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.Log.InfoContext(r.Context(), "api key revoked", "key_id", key.ID, "revoked_by", who)
	writeJSON(w, http.StatusOK, view(key, time.Now()))
}

// revokeByKey lets an admin-scoped key revoke keys too (no Basic needed).
func (h *handlers) revokeByKey(w http.ResponseWriter, r *http.Request) {
	h.revokeKey(w, r, "key:"+principalFrom(r.Context()).KeyID)
}
