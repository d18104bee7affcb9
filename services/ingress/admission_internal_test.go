package ingress

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/admission"
	"github.com/dexbridge/dexbridge/internal/metrics"
)

// TestALongWaitGivesItsSlotBack: with one slot, a request that extends its write
// deadline (as long polls and streams do) lets the next request in while it waits;
// one that does not keeps its slot, and the next is refused.
func TestALongWaitGivesItsSlotBack(t *testing.T) {
	c := admission.New(admission.Config{Limit: 1, Queue: -1})
	entered := make(chan struct{})
	release := make(chan struct{})
	h := admit(c, metrics.New())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/poll" || r.URL.Path == "/busy" {
			if r.URL.Path == "/poll" {
				_ = http.NewResponseController(&statusRecorder{ResponseWriter: w}).SetWriteDeadline(time.Now().Add(time.Minute))
			}
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	status := func(path string) int {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	done := make(chan int, 1)
	go func() { done <- status("/poll") }()
	<-entered
	if s := status("/next"); s != http.StatusOK {
		t.Errorf("beside a long poll: %d, want 200", s)
	}
	go func() { done <- status("/busy") }()
	<-entered
	if s := status("/next"); s != http.StatusServiceUnavailable {
		t.Errorf("beside a busy request: %d, want 503", s)
	}
	if s := status("/healthz"); s != http.StatusOK {
		t.Errorf("a probe beside a busy request: %d, want 200", s)
	}
	close(release)
	<-done
	<-done
	if s := c.Stats(); s.InFlight != 0 {
		t.Errorf("%d in flight after every request, want 0", s.InFlight)
	}
}
