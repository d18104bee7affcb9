package ingress

import (
	"context"
	"net/http"
	"time"

	"github.com/dexbridge/dexbridge/internal/api"
)

// healthz says the process is alive; it checks nothing else on purpose, so an
// orchestrator does not restart a process whose dependencies are down.
func (h *handlers) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}

// readyz says whether requests can be served: NATS and PostgreSQL reachable.
func (h *handlers) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	for _, c := range h.opts.Checks {
		if err := c.Fn(ctx); err != nil {
			checks[c.Name] = "unavailable"
			h.opts.Log.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
			status = http.StatusServiceUnavailable
			continue
		}
		checks[c.Name] = "ok"
	}
	body := api.Ready{Checks: checks, Status: "ready"}
	if status != http.StatusOK {
		body.Status = "unavailable"
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, body)
}
