package cursor

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestSealedCursorsOpenOnlyForTheirQuery(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c := New(key, "webhook deliveries")
	scope := Scope("nexthink", "opened", "")
	pos := binary.BigEndian.AppendUint64(nil, 4242)
	s := c.Seal(scope, pos)
	if got, ok := c.Open(scope, s); !ok || !bytes.Equal(got, pos) {
		t.Fatalf("open: got %v %v, want the position back", got, ok)
	}
	flipped := []byte(s)
	flipped[3] ^= 1
	tests := map[string]struct {
		c     Codec
		scope []byte
		s     string
	}{
		"another query":        {c, Scope("nexthink", "closed", ""), s},
		"filters shifted":      {c, Scope("nexthinkopened", "", ""), s},
		"another key":          {New(bytes.Repeat([]byte{8}, 32), "webhook deliveries"), scope, s},
		"another listing":      {New(key, "executions"), scope, s},
		"altered":              {c, scope, string(flipped)},
		"truncated":            {c, scope, s[:len(s)-2]},
		"padded":               {c, scope, s + "="},
		"line break":           {c, scope, s[:4] + "\r\n" + s[4:]},
		"empty":                {c, scope, ""},
		"not base64":           {c, scope, "!!!!"},
		"huge":                 {c, scope, strings.Repeat("A", 4096)},
		"forged without a key": {New(nil, "webhook deliveries"), scope, New(nil, "webhook deliveries").Seal(scope, pos)},
	}
	for name, tt := range tests {
		if name == "forged without a key" {
			if _, ok := c.Open(tt.scope, tt.s); ok {
				t.Errorf("%s: opened, want refused", name)
			}
			continue
		}
		if _, ok := tt.c.Open(tt.scope, tt.s); ok {
			t.Errorf("%s: opened, want refused", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	c := New(bytes.Repeat([]byte{1}, 32), "fuzz")
	scope := Scope("a")
	f.Add(c.Seal(scope, []byte{0, 0, 0, 0, 0, 0, 0, 9}))
	f.Add("")
	f.Add("AQ")
	f.Add(c.Seal(scope, []byte{1}) + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		pos, ok := c.Open(scope, s)
		if ok && c.Seal(scope, pos) != s {
			t.Errorf("opened %q, but its position seals to another cursor", s)
		}
	})
}
