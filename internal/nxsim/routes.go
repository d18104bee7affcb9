package nxsim

import (
	"net/http"
	"time"
)

// routes returns a tenant's handler: every Nexthink path and the control API. The
// server mounts it at /tenants/<name> and, for the first tenant, at the root.
func (t *tenant) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, g group, perm string, h http.HandlerFunc) {
		mux.Handle(pattern, t.apiCall(pattern, g, perm, h))
	}
	api("POST /oauth2/default/v1/token", groupToken, "", t.handleToken)
	api("POST /api/v1/nql/execute", groupNQL, PermNQL, t.handleExecute(1))
	api("POST /api/v2/nql/execute", groupNQL, PermNQL, t.handleExecute(2))
	api("POST /api/v1/nql/export", groupExport, PermNQL, t.handleExportPost)
	api("GET /api/v1/nql/export", groupExport, PermNQL, t.handleExportGet)
	api("GET /api/v1/nql/status/{exportId}", groupExport, PermNQL, t.handleExportStatus)
	api("GET /api/v1/act/remote-action", groupActions, PermRemoteActions, t.handleListActions)
	api("GET /api/v1/act/remote-action/details", groupActions, PermRemoteActions, t.handleActionDetails)
	api("POST /api/v1/act/execute", groupActions, PermRemoteActions, t.handleExecuteAction)
	mux.Handle("GET /_files/exports/{file}", t.counted("GET /_files/exports/{file}", http.HandlerFunc(t.handleResultsFile)))

	mux.HandleFunc("GET /_nxsim/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /_nxsim/info", t.handleInfo)
	mux.HandleFunc("GET /_nxsim/counters", t.handleGetCounters)
	mux.HandleFunc("POST /_nxsim/counters/reset", t.handleResetCounters)
	mux.HandleFunc("GET /_nxsim/faults", t.handleGetFaults)
	mux.HandleFunc("PUT /_nxsim/faults", t.handlePutFaults)
	mux.HandleFunc("GET /_nxsim/executions/settings", t.handleGetExecSettings)
	mux.HandleFunc("PUT /_nxsim/executions/settings", t.handlePutExecSettings)
	mux.HandleFunc("GET /_nxsim/executions/{requestId}", t.handleGetExecutions)
	mux.HandleFunc("GET /_nxsim/exports/settings", t.handleGetExportSettings)
	mux.HandleFunc("PUT /_nxsim/exports/settings", t.handlePutExportSettings)
	mux.HandleFunc("GET /_nxsim/devices", t.handleSampleDevices)
	mux.HandleFunc("POST /_nxsim/devices/online", t.handleDevicesOnline)
	mux.HandleFunc("POST /_nxsim/queries", t.handleAddQuery)
	mux.HandleFunc("POST /_nxsim/tokens/expire", t.handleExpireTokens)
	mux.HandleFunc("POST /_nxsim/alerts", t.handleFireAlert)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeNQLError(w, http.StatusNotFound, "Not found.", r.URL.Path)
	})
	return mux
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the hijack of "down: close" reach the
// connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// counted counts a call and its response status under endpoint.
func (t *tenant) counted(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.counters.call(endpoint)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if rec.status != 0 {
				t.counters.response(endpoint, rec.status)
			}
			t.log.Debug("api call", "endpoint", endpoint, "status", rec.status, "duration_ms", time.Since(start).Milliseconds())
		}()
		h.ServeHTTP(rec, r)
	})
}

// apiCall wraps a Nexthink API handler: count, inject faults, authorise.
func (t *tenant) apiCall(endpoint string, g group, perm string, h http.HandlerFunc) http.Handler {
	return t.counted(endpoint, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !t.faults.apply(w, r, g) {
			return
		}
		if perm != "" && !t.authorize(w, r, g, perm) {
			return
		}
		h(w, r)
	}))
}
