// Package auth decides who may call the REST API: API keys with scopes for chatbots,
// and HTTP Basic (an instance's Nexthink API credentials or the operator's admin
// credential) for managing the keys themselves.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Scope is a permission a key carries.
type Scope string

// The scopes: read (identify devices, list topics and remote actions), diagnose (run
// diagnoses and saved queries), remediate (trigger remote actions), admin (operate
// dexbridge: discovery, reload, keys). Delegate narrows the others to one employee:
// such a key reaches only the devices of the employee it is bound to (EmployeeUPN)
// or, when it is bound to none, of the one each request names (Principal.ActFor).
const (
	Read      Scope = "read"
	Diagnose  Scope = "diagnose"
	Remediate Scope = "remediate"
	Admin     Scope = "admin"
	Delegate  Scope = "delegate"
)

// Scopes lists every scope.
func Scopes() []Scope { return []Scope{Read, Diagnose, Remediate, Admin, Delegate} }

// ParseScopes checks a list of scope names; empty means read and diagnose.
func ParseScopes(names []string) ([]string, error) {
	if len(names) == 0 {
		return []string{string(Read), string(Diagnose)}, nil
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !slices.Contains(Scopes(), Scope(n)) {
			return nil, fmt.Errorf("unknown scope %q (scopes: read, diagnose, remediate, admin, delegate)", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// CheckDelegate checks that scopes and employee (a UPN, or "") go together: only a
// delegate key is bound to an employee (one that is not names its employee with each
// request), and a delegate cannot administer dexbridge (it would mint itself an
// unrestricted key). It returns the field to blame and why.
func CheckDelegate(scopes []string, employee string) (field string, err error) {
	delegate := slices.Contains(scopes, string(Delegate))
	switch {
	case !delegate && employee != "":
		return "employee_upn", errors.New("employee_upn binds a delegate key: add the delegate scope, or leave employee_upn out")
	case delegate && slices.Contains(scopes, string(Admin)):
		return "scopes", errors.New("a delegate key cannot have the admin scope")
	case delegate && len(scopes) == 1:
		return "scopes", errors.New("a delegate key needs the scopes it may use for its employee: read, diagnose, remediate")
	}
	if employee != "" {
		if err := events.CheckIdentifier(events.KeyUPN, employee); err != nil {
			return "employee_upn", errors.New("want a UPN such as jdoe@example.com")
		}
	}
	return "", nil
}

// Principal is an authenticated API key.
type Principal struct {
	KeyID              string
	Name               string
	Scopes             []string
	RateLimitPerSecond *float64
	// Employee is the UPN of the employee a delegate key acts for: the key's own, or
	// the one its request names (ActFor); "" for other keys.
	Employee string
}

// ActFor narrows p to the employee a request names (a UPN, "" for none). Only a
// delegate key may name one, and a key bound to an employee only that employee;
// a delegate key must act for somebody.
func (p *Principal) ActFor(upn string) error {
	switch {
	case upn == "" && p.Has(Delegate) && p.Employee == "":
		return problem.New(problem.DelegateForbidden, "this delegate key acts for the employee each request names: send their UPN as Dexbridge-On-Behalf-Of")
	case upn == "":
		return nil
	case !p.Has(Delegate):
		return problem.New(problem.DelegateForbidden, "only a key with the delegate scope may act on behalf of an employee")
	case p.Employee != "" && !strings.EqualFold(p.Employee, upn):
		return problem.New(problem.DelegateForbidden, "this key acts for %s only", p.Employee)
	}
	if err := events.CheckIdentifier(events.KeyUPN, upn); err != nil {
		return problem.InvalidField("Dexbridge-On-Behalf-Of", "want the employee's UPN, such as jdoe@example.com")
	}
	if p.Employee == "" {
		p.Employee = upn
	}
	return nil
}

// Has reports whether p carries scope s.
func (p *Principal) Has(s Scope) bool { return slices.Contains(p.Scopes, string(s)) }

// Delegated reports whether p acts for one employee only.
func (p *Principal) Delegated() bool { return p.Employee != "" || p.Has(Delegate) }

// keyPrefix marks dexbridge keys, so secret scanners and people recognise them.
const keyPrefix = "dxb_"

// Keys creates and checks API keys. Checked keys are cached for at most cacheTTL,
// so a revocation is effective on every replica within that time.
type Keys struct {
	db    *store.DB
	now   func() time.Time
	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
	// fetches coalesces the look-ups of one key; its keys are hashes, never secrets.
	fetches singleflight.Group
}

const (
	cacheTTL      = time.Second
	touchInterval = time.Minute
	fetchTimeout  = 5 * time.Second
)

type cached struct {
	key     store.APIKey
	found   bool
	fetched time.Time
}

// NewKeys returns the key service.
func NewKeys(db *store.DB) *Keys {
	return &Keys{db: db, now: time.Now, cache: map[[sha256.Size]byte]cached{}}
}

// NewKey describes a key to create.
type NewKey struct {
	Name               string
	Scopes             []string
	ExpiresAt          *time.Time
	CreatedBy          string
	RateLimitPerSecond *float64
	// EmployeeUPN binds a delegate key (see CheckDelegate).
	EmployeeUPN string
}

// Create makes a key and returns its secret, which is shown once and never stored.
func (k *Keys) Create(ctx context.Context, n NewKey) (string, store.APIKey, error) {
	var secret [32]byte
	var id [8]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", store.APIKey{}, err
	}
	if _, err := rand.Read(id[:]); err != nil {
		return "", store.APIKey{}, err
	}
	if field, err := CheckDelegate(n.Scopes, n.EmployeeUPN); err != nil {
		return "", store.APIKey{}, problem.InvalidField(field, "%v", err)
	}
	var employee *string
	if n.EmployeeUPN != "" {
		employee = &n.EmployeeUPN
	}
	token := keyPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(token))
	key, err := k.db.CreateAPIKey(ctx, store.APIKey{
		ID: "key_" + hex.EncodeToString(id[:]), Name: n.Name, Scopes: n.Scopes,
		CreatedBy: n.CreatedBy, ExpiresAt: n.ExpiresAt, RateLimitPerSecond: n.RateLimitPerSecond, EmployeeUPN: employee,
	}, hash[:])
	if err != nil {
		return "", store.APIKey{}, err
	}
	return token, key, nil
}

// ErrNoKey is returned when a request carries no key at all.
var ErrNoKey = problem.New(problem.Unauthorized, "an API key is required: send it as X-API-Key or Authorization: Bearer")

var errBadKey = problem.New(problem.Unauthorized, "the API key is invalid, expired or revoked")

// Authenticate checks a presented key.
func (k *Keys) Authenticate(ctx context.Context, presented string) (*Principal, error) {
	if presented == "" {
		return nil, ErrNoKey
	}
	if !strings.HasPrefix(presented, keyPrefix) || len(presented) > 128 {
		return nil, errBadKey
	}
	hash := sha256.Sum256([]byte(presented))
	now := k.now()
	k.mu.Lock()
	c, ok := k.cache[hash]
	k.mu.Unlock()
	if !ok || now.Sub(c.fetched) > cacheTTL {
		// The requests that find the entry stale at once share one fetch: under load a
		// key's entry expires with dozens of its requests in flight.
		v, err, _ := k.fetches.Do(string(hash[:]), func() (any, error) {
			// Not bound to the first request's cancellation: the others wait for it.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			defer cancel()
			return k.fetch(fctx, hash, now)
		})
		if err != nil {
			return nil, err
		}
		c = v.(cached)
	}
	if !c.found || c.key.RevokedAt != nil || (c.key.ExpiresAt != nil && !now.Before(*c.key.ExpiresAt)) {
		return nil, errBadKey
	}
	p := &Principal{KeyID: c.key.ID, Name: c.key.Name, Scopes: c.key.Scopes, RateLimitPerSecond: c.key.RateLimitPerSecond}
	if c.key.EmployeeUPN != nil {
		p.Employee = *c.key.EmployeeUPN
	}
	return p, nil
}

// fetch reads the key whose secret hashes to hash and caches it (or its absence),
// touching its last use at most once per touchInterval.
func (k *Keys) fetch(ctx context.Context, hash [sha256.Size]byte, now time.Time) (cached, error) {
	k.mu.Lock()
	old, ok := k.cache[hash]
	k.mu.Unlock()
	var c cached
	key, err := k.db.APIKeyByHash(ctx, hash[:])
	switch {
	case errors.Is(err, store.ErrNotFound):
		c = cached{fetched: now}
	case err != nil:
		return cached{}, problem.Wrap(problem.ServiceUnavailable, err, "API keys cannot be checked right now").Retry(time.Second)
	default:
		touch := !ok || !old.found || now.Sub(old.fetched) > touchInterval
		if ok && old.found && !touch {
			// Keep the time of the last touch, not of the last fetch.
			key.LastUsedAt = old.key.LastUsedAt
		}
		c = cached{key: key, found: true, fetched: now}
		if touch || key.LastUsedAt == nil || now.Sub(*key.LastUsedAt) > touchInterval {
			_ = k.db.TouchAPIKey(ctx, key.ID) // best effort: last use is informative
		}
	}
	k.mu.Lock()
	if len(k.cache) > 10000 { // bound memory against key spraying
		clear(k.cache)
	}
	k.cache[hash] = c
	k.mu.Unlock()
	return c, nil
}

// List returns every key, without secrets.
func (k *Keys) List(ctx context.Context) ([]store.APIKey, error) { return k.db.ListAPIKeys(ctx) }

// Revoke revokes a key.
func (k *Keys) Revoke(ctx context.Context, id string) (store.APIKey, error) {
	key, err := k.db.RevokeAPIKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, problem.New(problem.NotFound, "no API key %q", id)
	}
	return key, err
}

// Credential is a user and password allowed to manage keys.
type Credential struct {
	Who      string // "admin" or "instance:<name>", recorded as the key's creator
	User     string
	Password string
}

// Credentials checks HTTP Basic credentials in constant time.
type Credentials struct {
	list []credentialHash
}

type credentialHash struct {
	who        string
	user, pass [sha256.Size]byte
}

// NewCredentials prepares the accepted credentials.
func NewCredentials(cs []Credential) *Credentials {
	out := &Credentials{}
	for _, c := range cs {
		if c.User == "" || c.Password == "" {
			continue
		}
		out.list = append(out.list, credentialHash{who: c.Who, user: sha256.Sum256([]byte(c.User)), pass: sha256.Sum256([]byte(c.Password))})
	}
	return out
}

// Check returns who the credential belongs to. Every configured credential is compared,
// hashed to equal lengths, so timing tells nothing about which part was wrong.
func (c *Credentials) Check(user, password string) (string, bool) {
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	who := ""
	for _, cred := range c.list {
		if subtle.ConstantTimeCompare(u[:], cred.user[:])&subtle.ConstantTimeCompare(p[:], cred.pass[:]) == 1 {
			who = cred.who
		}
	}
	return who, who != ""
}

// Empty reports whether no credential is configured (keys can then only be made with
// `dexbridge apikey create`).
func (c *Credentials) Empty() bool { return len(c.list) == 0 }
