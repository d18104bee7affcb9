package nexthinkv6

import (
	"testing"
	"time"
)

// FuzzDecodeRows: an Engine's answer never panics the decoder, and what decodes
// is rows of plain values.
func FuzzDecodeRows(f *testing.F) {
	for _, s := range []string{`[]`, `[{"name":"PC-1","total_ram":8192,"last_seen":"2026-01-02T03:04:05"}]`,
		`[{"a":1.5,"b":null,"c":[1,"x"],"d":{"e":"2026-01-02T03:04:05"}}]`, `{"x":1}`, `[`, `[{"n":1e400}]`, `<html></html>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := decodeRows(b)
		if err != nil {
			return
		}
		for _, r := range rows {
			for k, v := range r {
				if s, ok := v.(string); ok {
					if _, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
						t.Errorf("%s: date-time %q left without its zone", k, s)
					}
				}
			}
		}
	})
}

// FuzzErrorMessage: error bodies of any shape give a short message and a code.
func FuzzErrorMessage(f *testing.F) {
	for _, s := range []string{`<p id="error_message">Unknown table: devices.</p><ul id="error_options"><li>device</li></ul>`,
		`{"code":"INVALID_DEVICES","message":"deviceUids must hold 1 to 10000 device UIDs."}`, `{"message":"a \"quoted\" \u00e9"}`, ``, `<p id="error_message">`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m := errorMessage(b); len(m) > 303 {
			t.Errorf("message of %d bytes", len(m))
		}
		if c := errorCode(b, 400); c == "" || len(c) > 64 {
			t.Errorf("code %q", c)
		}
	})
}
