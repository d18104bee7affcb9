package signature

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret-s3cret-s3cret")
	body := []byte(`{"monitor":"Outlook crashes"}`)
	now := time.Unix(1767322800, 0)
	good := Sign(secret, now, body)
	tests := []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", good, body, now, nil},
		{"good within tolerance", good, body, now.Add(4 * time.Minute), nil},
		{"clock behind within tolerance", good, body, now.Add(-4 * time.Minute), nil},
		{"replay after the window", good, body, now.Add(6 * time.Minute), ErrStale},
		{"from the future", good, body, now.Add(-6 * time.Minute), ErrStale},
		{"other body", good, []byte(`{"monitor":"Slow PC"}`), now, ErrMismatch},
		{"other secret", Sign([]byte("another-secret"), now, body), body, now, ErrMismatch},
		{"rotation: second value matches", Sign([]byte("old"), now, body) + "," + strings.Split(good, ",")[1], body, now, nil},
		{"missing", "", body, now, ErrMissing},
		{"no v1", "t=1767322800", body, now, ErrMalformed},
		{"no t", "v1=abcd", body, now, ErrMalformed},
		{"two t", "t=1,t=2,v1=ab", body, now, ErrMalformed},
		{"garbage", "sha256=abcdef", body, now, ErrMalformed},
		{"non-hex", "t=1767322800,v1=zz", body, now, ErrMismatch},
		{"timestamp not a number", "t=soon,v1=ab", body, now, ErrMalformed},
	}
	for _, tt := range tests {
		err := Verify(secret, tt.header, tt.body, tt.now, 5*time.Minute)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestSignFormat(t *testing.T) {
	// A fixed vector, so a chatbot implementer can check their code against it:
	// HMAC-SHA256("whsec_test", "1767322800.{}").
	// openssl: printf '1767322800.{}' | openssl dgst -sha256 -hmac whsec_test
	got := Sign([]byte("whsec_test"), time.Unix(1767322800, 0), []byte("{}"))
	if want := "t=1767322800,v1=1c1b420481271024f6f3537f1dc8c6ca8cd37cd0ddf9deba346cf6e4a35c561f"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := Verify([]byte("whsec_test"), got, []byte("{}"), time.Unix(1767322800, 0), time.Minute); err != nil {
		t.Errorf("own signature refused: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1767322800,v1=00", []byte("{}"))
	f.Add("t=,v1=", []byte(""))
	f.Add(",,,=", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		// Never panics, and only a real signature passes.
		if Verify([]byte("k"), header, body, time.Unix(1767322800, 0), time.Hour) == nil {
			if Verify([]byte("other"), header, body, time.Unix(1767322800, 0), time.Hour) == nil {
				t.Errorf("%q verifies under two secrets", header)
			}
		}
	})
}
