// Package stdwebhooks signs outgoing webhooks per the Standard Webhooks
// specification (https://www.standardwebhooks.com): the headers webhook-id,
// webhook-timestamp and webhook-signature, "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", with a secret written whsec_<base64 key>.
package stdwebhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed webhook.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret.
const SecretPrefix = "whsec_"

// keySize is the length of a new key: the specification asks 24 to 64 bytes.
const keySize = 32

// NewSecret makes a random secret, whsec_<base64 of 32 bytes>.
func NewSecret() (string, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// Key is the signing key a secret holds.
func Key(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("not a whsec_ secret")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, errors.New("not a whsec_ secret")
	}
	return key, nil
}

// Signature is the webhook-signature value of a message.
func Signature(key []byte, id string, at time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(at.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign sets the three headers of a message on h.
func Sign(h http.Header, key []byte, id string, at time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, Signature(key, id, at, body))
}
