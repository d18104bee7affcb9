package nexthink

import "testing"

// TestNotRun: only failures that certainly left the instance untouched let a trigger
// be released and retried.
func TestNotRun(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want bool
	}{
		{"refused by the limiter", Error{Code: CodeRateLimited}, true},
		{"invalid before sending", Error{Code: CodeInvalid}, true},
		{"no connection", Error{Code: CodeTransport, unsent: true}, true},
		{"no token", Error{Status: 401, Code: "invalid_client", unsent: true}, true},
		{"bad request", Error{Status: 400, Code: "UNKNOWN_PARAMETER"}, true},
		{"not enabled", Error{Status: 403, Code: "REMOTE_ACTION_NOT_API_ENABLED"}, true},
		{"too many requests", Error{Status: 429}, true},
		{"unavailable", Error{Status: 503}, true},
		{"server error", Error{Status: 500}, false},
		{"gateway timeout", Error{Status: 504}, false},
		{"timeout after sending", Error{Code: CodeTimeout}, false},
		{"reset after sending", Error{Code: CodeTransport}, false},
		{"caller gave up", Error{Code: CodeCanceled}, false},
	}
	for _, tt := range tests {
		if got := tt.err.NotRun(); got != tt.want {
			t.Errorf("%s: got NotRun %v, want %v", tt.name, got, tt.want)
		}
	}
}
