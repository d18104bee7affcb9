// Package cursor makes the cursors of paginated listings: a position in a listing,
// sealed with HMAC-SHA256 under a key every replica shares and bound to the query it
// was issued for, so a client can neither forge one nor carry one to another query.
// The position is not secret (a cursor is base64url), only tamper-proof.
package cursor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"sync"
)

const (
	version = 1
	macLen  = 16
)

// encoding refuses non-canonical encodings, so that one position has one cursor.
var encoding = base64.RawURLEncoding.Strict()

// Codec seals and opens the cursors of one kind of listing.
type Codec struct {
	key     []byte
	purpose string
}

// New returns the codec of the listing named purpose, with the deployment's key.
func New(key []byte, purpose string) Codec { return Codec{key: key, purpose: purpose} }

// Scope is what a cursor is bound to: the query's filters in a canonical order (not
// its page size).
func Scope(filters ...string) []byte {
	h := sha256.New()
	for _, f := range filters {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

func (c Codec) mac(scope, body []byte) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte("dexbridge cursor\x00" + c.purpose + "\x00"))
	h.Write(scope)
	h.Write(body)
	return h.Sum(nil)[:macLen]
}

// Seal is the cursor of position pos in the listing of scope.
func (c Codec) Seal(scope, pos []byte) string {
	body := append([]byte{version}, pos...)
	return encoding.EncodeToString(append(body, c.mac(scope, body)...))
}

// Open returns the position s holds, when c sealed s for the query of scope.
func (c Codec) Open(scope []byte, s string) ([]byte, bool) {
	if len(s) > 512 {
		return nil, false
	}
	raw, err := encoding.DecodeString(s)
	// The decoder skips line breaks; the length check refuses them, so that one
	// position has one cursor.
	if err != nil || encoding.EncodedLen(len(raw)) != len(s) || len(raw) < 1+macLen || raw[0] != version {
		return nil, false
	}
	body, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if !hmac.Equal(sum, c.mac(scope, body)) {
		return nil, false
	}
	return body[1:], true
}

// KeyStore holds the deployment's signing keys, one per purpose (store.DB).
type KeyStore interface {
	SigningKey(ctx context.Context, purpose string) ([]byte, error)
}

// Keys loads the key of one listing from a KeyStore once, and keeps it: every
// replica reads the same key, so a cursor one replica sealed opens on another.
type Keys struct {
	Purpose string

	mu  sync.Mutex
	key []byte
}

// Codec is the listing's codec, with its key loaded from s on first use.
func (k *Keys) Codec(ctx context.Context, s KeyStore) (Codec, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key == nil {
		key, err := s.SigningKey(ctx, k.Purpose)
		if err != nil {
			return Codec{}, err
		}
		k.key = key
	}
	return New(k.key, k.Purpose), nil
}
