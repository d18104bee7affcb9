package problem_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/problem"
)

type dependencyDown struct{ down bool }

func (e dependencyDown) Error() string     { return "dial tcp 10.0.0.5:5432: connection refused" }
func (e dependencyDown) Unavailable() bool { return e.down }

func TestFromClassifies(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		want  problem.Code
		retry bool
	}{
		{"a problem as is", fmt.Errorf("wrapped: %w", problem.New(problem.NotFound, "no such thing")), problem.NotFound, false},
		{"a deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), problem.Timeout, false},
		{"an unavailable dependency", fmt.Errorf("devices of user: %w", dependencyDown{true}), problem.ServiceUnavailable, true},
		{"a dependency that says it is not unavailable", dependencyDown{false}, problem.Internal, false},
		{"anything else", errors.New("boom"), problem.Internal, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := problem.From(tt.err)
			if p.Code != tt.want || (p.RetryAfter > 0) != tt.retry {
				t.Errorf("got %s with Retry-After %s, want %s (retry %v)", p.Code, p.RetryAfter, tt.want, tt.retry)
			}
			if strings.Contains(p.Detail, "10.0.0.5") {
				t.Errorf("detail %q reveals the cause", p.Detail)
			}
		})
	}
}
