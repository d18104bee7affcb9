package nxsim

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Latency is a delay: Fixed plus a uniform random part in [0, Jitter).
type Latency struct {
	FixedMS  int `json:"fixed_ms"`
	JitterMS int `json:"jitter_ms"`
}

// Faults are the failure knobs of a tenant (control API PUT /_nxsim/faults).
type Faults struct {
	// Latency per API group ("token", "nql", "export", "act"); "*" applies to groups
	// not listed. Added to the configured base latency.
	Latency map[string]Latency `json:"latency,omitempty"`
	// ErrorRate is the share of API calls answered with ErrorStatus (500 or 503).
	ErrorRate   float64 `json:"error_rate,omitempty"`
	ErrorStatus int     `json:"error_status,omitempty"`
	// RateLimitRate is the share of API calls answered 429 with Retry-After.
	RateLimitRate     float64 `json:"rate_limit_rate,omitempty"`
	RetryAfterSeconds int     `json:"retry_after_seconds,omitempty"`
	// Groups limits ErrorRate and RateLimitRate to these API groups; empty means all.
	Groups []string `json:"groups,omitempty"`
	// Down makes the tenant unavailable: "503" answers 503 to every API call (token
	// included), "close" closes connections without an answer. "" is up.
	Down string `json:"down,omitempty"`
	// FailNext answers the next FailNext calls (of Groups) with FailStatus (429, 500
	// or 503), then lets calls through: deterministic where the rates are random.
	FailNext   int `json:"fail_next,omitempty"`
	FailStatus int `json:"fail_status,omitempty"`
}

// validate checks a Faults value from the control API.
func (f Faults) validate() error {
	for g, l := range f.Latency {
		if g != "*" && !knownGroup(g) {
			return fmt.Errorf("latency: unknown group %q", g)
		}
		if l.FixedMS < 0 || l.JitterMS < 0 {
			return fmt.Errorf("latency %s: negative", g)
		}
	}
	if f.ErrorRate < 0 || f.ErrorRate > 1 || f.RateLimitRate < 0 || f.RateLimitRate > 1 {
		return fmt.Errorf("error_rate and rate_limit_rate: want 0 to 1")
	}
	if f.ErrorStatus != 0 && f.ErrorStatus != 500 && f.ErrorStatus != 503 {
		return fmt.Errorf("error_status %d: want 500 or 503", f.ErrorStatus)
	}
	if f.RetryAfterSeconds < 0 {
		return fmt.Errorf("retry_after_seconds: negative")
	}
	for _, g := range f.Groups {
		if !knownGroup(g) {
			return fmt.Errorf("groups: unknown group %q", g)
		}
	}
	if f.FailNext < 0 {
		return fmt.Errorf("fail_next: negative")
	}
	switch f.FailStatus {
	case 0, 429, 500, 503:
	default:
		return fmt.Errorf("fail_status %d: want 429, 500 or 503", f.FailStatus)
	}
	switch f.Down {
	case "", "503", "close":
	default:
		return fmt.Errorf("down %q: want \"\", \"503\" or \"close\"", f.Down)
	}
	return nil
}

func knownGroup(g string) bool {
	switch group(g) {
	case groupToken, groupNQL, groupExport, groupActions:
		return true
	}
	return false
}

// faultState holds a tenant's faults.
type faultState struct {
	base time.Duration
	mu   sync.Mutex
	f    Faults
}

func (s *faultState) get() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
}

// takeFailNext consumes one of the FailNext calls, if any are left.
func (s *faultState) takeFailNext() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f.FailNext <= 0 {
		return 0, false
	}
	s.f.FailNext--
	status := s.f.FailStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return status, true
}

// apply runs the faults for one call of group g. It returns false when it answered
// (or dropped) the call itself.
func (s *faultState) apply(w http.ResponseWriter, r *http.Request, g group) bool {
	f := s.get()
	if f.Down == "close" {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return false
		}
		panic(http.ErrAbortHandler)
	}
	if f.Down == "503" {
		writeGroupError(w, g, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "Service unavailable.")
		return false
	}
	l, ok := f.Latency[string(g)]
	if !ok {
		l = f.Latency["*"]
	}
	d := s.base + time.Duration(l.FixedMS)*time.Millisecond
	if l.JitterMS > 0 {
		d += time.Duration(rand.Int64N(int64(l.JitterMS) * int64(time.Millisecond)))
	}
	if d > 0 {
		// Read the body first: only then does the server notice a client that gives up.
		if r.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	applies := len(f.Groups) == 0
	for _, x := range f.Groups {
		applies = applies || x == string(g)
	}
	if !applies {
		return true
	}
	if status, ok := s.takeFailNext(); ok {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(max(f.RetryAfterSeconds, 1)))
			writeGroupError(w, g, status, "TOO_MANY_REQUESTS", "Too many requests.")
			return false
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeGroupError(w, g, status, "INTERNAL_ERROR", http.StatusText(status)+" (injected by nxsim).")
		return false
	}
	if f.RateLimitRate > 0 && rand.Float64() < f.RateLimitRate {
		ra := f.RetryAfterSeconds
		if ra == 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeGroupError(w, g, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Too many requests.")
		return false
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		status := f.ErrorStatus
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeGroupError(w, g, status, "INTERNAL_ERROR", http.StatusText(status)+" (injected by nxsim).")
		return false
	}
	return true
}
