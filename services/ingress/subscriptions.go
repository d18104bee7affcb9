package ingress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/gorilla/mux"
	xlanguage "golang.org/x/text/language"

	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/netguard"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/stdwebhooks"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// SubscriptionsOptions configure /api/v1/proactive/subscriptions.
type SubscriptionsOptions struct {
	DB *store.DB
	// Policy limits the URLs (https only, no internal address) unless the operator
	// allows more.
	Policy netguard.Policy
	// Resolver resolves a URL's host to check its addresses (default: the system's).
	Resolver netguard.Resolver
	// Instances are the configured instances: a filter may name only these.
	Instances []string
	// Max is how many subscriptions the API may hold.
	Max int
}

// Subscriptions manages the chatbots' subscriptions to proactive events. A key sees
// and manages the subscriptions it made; an admin key every one, the configured
// callback's included.
type Subscriptions struct {
	o SubscriptionsOptions
}

// NewSubscriptions returns the service.
func NewSubscriptions(o SubscriptionsOptions) *Subscriptions {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	return &Subscriptions{o: o}
}

// Limits of a subscription's filters.
const (
	maxFilterValues = 50
	maxMonitorName  = 200
	maxLocaleLength = 35
)

var (
	subscriptionID = regexp.MustCompile(`^sub_[0-9a-z_]{1,64}$`)
	topicFilter    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// unprocessable is a 422 naming the field.
func unprocessable(field, format string, args ...any) *problem.Error {
	return &problem.Error{Code: problem.Unprocessable, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// checkFilters validates and normalises a request's filters and locale: monitors
// trimmed and unique whatever their case, topics as topic ids, instances among
// the configured ones, the locale a BCP 47 tag in its canonical form.
func checkFilters(req api.NewSubscription, instances []string) (store.NewSubscription, error) {
	var out store.NewSubscription
	if len(req.Monitors) > maxFilterValues || len(req.Topics) > maxFilterValues || len(req.Instances) > maxFilterValues {
		return out, unprocessable("monitors", "at most %d values per filter", maxFilterValues)
	}
	seen := map[string]bool{}
	for i, m := range req.Monitors {
		m = strings.TrimSpace(m)
		field := fmt.Sprintf("monitors[%d]", i)
		switch {
		case m == "":
			return out, unprocessable(field, "a monitor name is not empty")
		case len(m) > maxMonitorName:
			return out, unprocessable(field, "a monitor name is at most %d bytes", maxMonitorName)
		case strings.ContainsFunc(m, unicode.IsControl) || !isUTF8(m):
			return out, unprocessable(field, "a monitor name holds no control characters")
		}
		if k := strings.ToLower(m); !seen[k] {
			seen[k] = true
			out.Monitors = append(out.Monitors, m)
		}
	}
	for i, tp := range req.Topics {
		if !topicFilter.MatchString(tp) {
			return out, unprocessable(fmt.Sprintf("topics[%d]", i), "a topic id is lower-case letters, digits, _ and -, such as outlook")
		}
		if !slices.Contains(out.Topics, tp) {
			out.Topics = append(out.Topics, tp)
		}
	}
	for i, in := range req.Instances {
		if !slices.Contains(instances, in) {
			return out, unprocessable(fmt.Sprintf("instances[%d]", i), "no instance %q: the instances are %s", clip(in, 64), strings.Join(instances, ", "))
		}
		if !slices.Contains(out.Instances, in) {
			out.Instances = append(out.Instances, in)
		}
	}
	out.Locale = "en"
	if req.Locale != "" {
		tag, err := xlanguage.Parse(req.Locale)
		if err != nil || len(req.Locale) > maxLocaleLength || tag == xlanguage.Und {
			return out, unprocessable("locale", "want a BCP 47 language tag such as en, de-CH or fr")
		}
		out.Locale = tag.String()
	}
	return out, nil
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// check validates a creation request: the URL (form, scheme, every address its
// host resolves to) and the filters.
func (s *Subscriptions) check(ctx context.Context, req api.NewSubscription) (store.NewSubscription, error) {
	u, err := s.o.Policy.CheckURL(ctx, s.o.Resolver, strings.TrimSpace(req.URL))
	if err != nil {
		var r *netguard.Refused
		if errors.As(err, &r) {
			return store.NewSubscription{}, unprocessable("url", "%s", r.Reason)
		}
		return store.NewSubscription{}, err
	}
	out, err := checkFilters(req, s.o.Instances)
	if err != nil {
		return store.NewSubscription{}, err
	}
	out.URL = u.String()
	return out, nil
}

func subscriptionView(s store.Subscription) api.Subscription {
	out := api.Subscription{ID: s.ID, Origin: s.Origin, URL: s.URL, Monitors: s.Monitors, Topics: s.Topics, Instances: s.Instances,
		Locale: s.Locale, State: s.State, Failures: s.Failures, LastFailureAt: wire.UTC(s.LastFailureAt), LastSuccessAt: wire.UTC(s.LastSuccessAt),
		PausedAt: wire.UTC(s.PausedAt), Pending: s.Pending, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}
	if s.LastError != "" {
		out.LastError = &s.LastError
	}
	for _, l := range []*[]string{&out.Monitors, &out.Topics, &out.Instances} {
		if *l == nil {
			*l = []string{}
		}
	}
	return out
}

// owner is who made the request, as subscriptions record it, and whether it may
// see every subscription.
func owner(r *http.Request) (string, bool) {
	p := principalFrom(r.Context())
	if p == nil {
		return "", false
	}
	return "key:" + p.KeyID, p.Has(auth.Admin)
}

func (h *handlers) subscriptions(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Subscriptions == nil {
		h.fail(w, r, problem.New(problem.NotFound, "proactive subscriptions are not served here"))
		return false
	}
	return true
}

func (h *handlers) createSubscription(w http.ResponseWriter, r *http.Request) {
	if !h.subscriptions(w, r) {
		return
	}
	s := h.opts.Subscriptions
	var req api.NewSubscription
	if err := decodeJSON(w, r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := s.check(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		h.fail(w, r, err)
		return
	}
	n.ID = "sub_" + hex.EncodeToString(id[:])
	if n.Secret, err = stdwebhooks.NewSecret(); err != nil {
		h.fail(w, r, err)
		return
	}
	n.CreatedBy, _ = owner(r)
	n.Max = s.o.Max
	sub, err := s.o.DB.CreateSubscription(r.Context(), n)
	if errors.Is(err, store.ErrTooManySubscriptions) {
		h.fail(w, r, problem.New(problem.Conflict, "there are already %d subscriptions (proactive.subscriptions.max): delete one first", s.o.Max))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/proactive/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, api.CreatedSubscription{Subscription: subscriptionView(sub), Secret: n.Secret})
}

func (h *handlers) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	if !h.subscriptions(w, r) {
		return
	}
	subs, err := h.opts.Subscriptions.o.DB.Subscriptions(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	by, admin := owner(r)
	out := api.Subscriptions{Subscriptions: []api.Subscription{}}
	for _, s := range subs {
		if admin || s.CreatedBy == by {
			out.Subscriptions = append(out.Subscriptions, subscriptionView(s))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// ownSubscription is the subscription of the path, if the key may see it (404
// otherwise, so ids of others are not confirmed).
func (h *handlers) ownSubscription(w http.ResponseWriter, r *http.Request) (store.Subscription, bool) {
	if !h.subscriptions(w, r) {
		return store.Subscription{}, false
	}
	id := mux.Vars(r)["id"]
	notFound := problem.New(problem.NotFound, "no subscription %q", clip(id, 80))
	if !subscriptionID.MatchString(id) {
		h.fail(w, r, notFound)
		return store.Subscription{}, false
	}
	s, err := h.opts.Subscriptions.o.DB.GetSubscription(r.Context(), id)
	by, admin := owner(r)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !admin && s.CreatedBy != by):
		h.fail(w, r, notFound)
		return store.Subscription{}, false
	case err != nil:
		h.fail(w, r, err)
		return store.Subscription{}, false
	}
	return s, true
}

func (h *handlers) getSubscription(w http.ResponseWriter, r *http.Request) {
	if s, ok := h.ownSubscription(w, r); ok {
		writeJSON(w, http.StatusOK, subscriptionView(s))
	}
}

func (h *handlers) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	s, ok := h.ownSubscription(w, r)
	if !ok {
		return
	}
	if s.Origin == store.SubscriptionFromConfig {
		h.fail(w, r, problem.New(problem.Conflict, "this is the callback configured in the environment: unset PROACTIVE_CALLBACK_URL to remove it"))
		return
	}
	err := h.opts.Subscriptions.o.DB.DeleteSubscription(r.Context(), s.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) { // deleted meanwhile: gone all the same
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handlers) resumeSubscription(w http.ResponseWriter, r *http.Request) {
	s, ok := h.ownSubscription(w, r)
	if !ok {
		return
	}
	var body struct{}
	if err := decodeJSON(w, r, &body, true); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.opts.Subscriptions.o.DB.ResumeSubscription(r.Context(), s.ID)
	if errors.Is(err, store.ErrNotFound) {
		err = problem.New(problem.NotFound, "no subscription %q", s.ID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, subscriptionView(out))
}
