// Package signature signs and verifies HTTP bodies with HMAC-SHA256 over the
// timestamp and the body, in the header format Stripe made common:
//
//	X-Dexbridge-Signature: t=1767322800,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// v1 is hex(HMAC-SHA256(secret, t + "." + body)), t is Unix seconds. A header may
// carry several v1 values (one per secret, while a secret is being rotated); one
// matching value is enough. dexbridge signs its proactive callbacks this way and
// verifies webhooks from senders that sign.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the default header name.
const Header = "X-Dexbridge-Signature"

// Sign returns the header value for body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// The reasons Verify refuses a signature; their messages are safe to show a sender.
var (
	ErrMissing   = errors.New("no signature header")
	ErrMalformed = errors.New("malformed signature header: want t=<unix seconds>,v1=<hex HMAC-SHA256>")
	ErrStale     = errors.New("signature timestamp outside the tolerance window (a replay, or a clock off)")
	ErrMismatch  = errors.New("signature does not match the body")
)

// Verify checks header against body: the timestamp must be within tolerance of now
// and one v1 value must be the HMAC of the timestamp and body under secret.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if strings.TrimSpace(header) == "" {
		return ErrMissing
	}
	ts, sigs, err := parse(header)
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s away, tolerance %s", ErrStale, d.Round(time.Second).Abs(), tolerance)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrMismatch
	}
	return nil
}

// parse splits "t=...,v1=...,v1=..."; unknown schemes (v0, v2) are ignored.
func parse(header string) (string, []string, error) {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, ErrMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, ErrMalformed
			}
			ts = v
		case "v1":
			if len(sigs) < 8 {
				sigs = append(sigs, v)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return "", nil, ErrMalformed
	}
	return ts, sigs, nil
}
