package topic

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// TestNumbersAndNames pins the expression semantics the topics rely on: dotted names,
// fields["..."], numbers normalised to doubles with int literals promoted, strings
// left alone, now and datetime().
func TestNumbersAndNames(t *testing.T) {
	headers := []string{"a", "b", "c", "d", "t", "n", "x.y.z", "package.name"}
	known := map[string]bool{}
	for _, h := range headers {
		known[h] = true
	}
	env, err := newEnv(headers)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	p := &Program{}
	base := map[string]any{
		"a": 8.5, "b": int64(4), "c": "ab", "d": "10", "t": "2026-01-02 10:00:00",
		"n": json.Number("4"), "x.y.z": int32(7), "package.name": "Contoso",
	}
	tests := []struct {
		src     string
		fields  map[string]any // overrides base
		want    any            // a Go bool, float64, int64 or string; nil when an error is expected
		wantErr string
	}{
		{src: `a + b > 10`, want: true},                          // double field + int field
		{src: `a + b == 12.5`, want: true},                       // the sum is a double
		{src: `b == 4`, want: true},                              // int literal against a normalised int
		{src: `b > 3 && b < 5 && b >= 4 && b <= 4`, want: true},  //
		{src: `b + 1 == 5`, want: true},                          // int literal in arithmetic
		{src: `(b + 1) * 2 == 10`, want: true},                   // nested
		{src: `(a + 1) * 2 == 19.0`, want: true},                 // would not type-check without promotion
		{src: `b / 8`, want: 0.5},                                // numbers from fields divide as doubles
		{src: `b - -1`, want: 5.0},                               //
		{src: `size(c) + 1 == 3`, want: true},                    // int arithmetic stays int
		{src: `size(c) + 1`, want: int64(3)},                     //
		{src: `n == b`, want: true},                              // json.Number is a number
		{src: `x.y.z > 6`, want: true},                           // a dotted name as written, int32 value
		{src: `fields["x.y.z"] == 7`, want: true},                // the flat map
		{src: `fields["package.name"] == "Contoso"`, want: true}, // a name CEL cannot spell
		{src: `d > 5`, wantErr: "no such overload"},              // numeric strings stay strings
		{src: `double(d) > 5`, want: true},                       // and convert explicitly
		{src: `d == "10"`, want: true},                           //
		{src: `now - datetime(t) > duration("1h")`, want: true},
		{src: `now - datetime(t) > duration("3h")`, want: false},
		{src: `now - datetime(t) == duration("2h")`, fields: map[string]any{"t": now.Add(-2 * time.Hour)}, want: true},
		{src: `datetime(t) < now`, fields: map[string]any{"t": "2026-01-02T11:00:00Z"}, want: true},
		{src: `datetime(t) < now`, fields: map[string]any{"t": "yesterday"}, wantErr: "cannot read"},
		{src: `["x", "ab"].exists(s, c.contains(s))`, want: true},
		// Equality and in refuse to compare different kinds: a wrong type must not
		// make a rule clear (or, with !=, found).
		{src: `c == 1`, wantErr: "cannot compare string with double"},
		{src: `c != 1`, wantErr: "cannot compare string with double"},
		{src: `d == 10`, wantErr: "cannot compare"},
		{src: `c != '["-"]'`, fields: map[string]any{"c": []any{"-"}}, wantErr: "cannot compare list with string"},
		{src: `c == null`, want: false},
		{src: `b in [4, 5]`, want: true},
		{src: `b in [1.5, 5]`, want: false},
		{src: `c in ["x", "ab"]`, want: true},
		{src: `c in [1, 2]`, wantErr: "cannot compare"},
		{src: `"k" in {"k": 1}`, want: true},
		{src: `b != 4.0`, want: false},
		{src: `size(c) == 2`, want: true},
		{src: `c.split("").size() > 1`, want: true}, // the strings extension
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := compileExpr(env, tt.src, known)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			fields := map[string]any{}
			for k, v := range base {
				fields[k] = v
			}
			for k, v := range tt.fields {
				fields[k] = v
			}
			v, reason := e.eval(fields, p.activation(fields, now))
			if tt.wantErr != "" {
				if !strings.Contains(reason, tt.wantErr) {
					t.Fatalf("got %v, reason %q; want a failure mentioning %q", v, reason, tt.wantErr)
				}
				return
			}
			if reason != "" {
				t.Fatalf("got failure %q, want %v", reason, tt.want)
			}
			if got := v.Value(); got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestFieldsRead(t *testing.T) {
	headers := []string{"device.name", "device.boot.days_since_last_full_boot", "free_space", "package.name"}
	known := map[string]bool{}
	for _, h := range headers {
		known[h] = true
	}
	env, err := newEnv(headers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src     string
		want    []string
		wantErr string
	}{
		{src: `device.boot.days_since_last_full_boot > 10 && free_space <= 6`, want: []string{"device.boot.days_since_last_full_boot", "free_space"}},
		{src: `fields["package.name"] == "x" || device.name == "y"`, want: []string{"package.name", "device.name"}},
		{src: `["a"].exists(s, device.name.contains(s))`, want: []string{"device.name"}},
		{src: `now > timestamp("2020-01-01T00:00:00Z")`, want: nil},
		{src: `device.nope > 1`, wantErr: "undeclared reference to 'device.nope'"},
		{src: `free_space_GB <= 6`, wantErr: "undeclared reference to 'free_space_GB'"},
		{src: `fields["free_space_GB"] <= 6`, wantErr: `fields["free_space_GB"]: no query of this topic lists free_space_GB`},
		{src: `fields["free" + "_space"] <= 6`, wantErr: "literal name"},
		{src: `fields.size() > 0`, wantErr: "literal name"},
		{src: `package.name == "x"`, wantErr: "reserved identifier"},
		{src: `free_space <=`, wantErr: "column"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := compileExpr(env, tt.src, known)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(e.fields, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got fields %q, want %q", e.fields, tt.want)
			}
		})
	}
}

func TestParamString(t *testing.T) {
	tests := []struct {
		in      ref.Val
		want    string
		wantErr bool
	}{
		{types.String("Spotify,Teams"), "Spotify,Teams", false},
		{types.Double(2), "2", false},
		{types.Double(2.5), "2.5", false},
		{types.Int(-3), "-3", false},
		{types.Bool(true), "true", false},
		{types.Timestamp{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, "2026-01-02T03:04:05Z", false},
		{types.NullValue, "", true},
		{types.DefaultTypeAdapter.NativeToValue([]any{"a"}), "", true},
	}
	for _, tt := range tests {
		got, err := paramString(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("paramString(%v): got %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
