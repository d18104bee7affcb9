package ingress

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/internal/mcpserver"
)

// routeMCP serves the MCP endpoint, /mcp (Streamable HTTP). Its tools call the REST
// API (rest, the whole handler) in process with the caller's key, so each tool call
// is authorised, limited and validated exactly as the REST request it becomes.
func (h *handlers) routeMCP(r *mux.Router, rest func() http.Handler) {
	srv := mcpserver.New(mcpserver.Options{
		REST: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { rest().ServeHTTP(w, req) }),
		Log:  h.opts.Log,
	})
	r.Handle("/mcp", h.mcpDoor(srv)).Methods(http.MethodPost)
}

// mcpDoor turns away, with a 401 problem, an MCP request without a valid API key (and
// with a 403 one from a delegate key that acts for nobody), before the MCP server
// reads it. The key's rate limit is taken by each tool call's
// REST request, not here: a tool call would otherwise count twice.
func (h *handlers) mcpDoor(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.opts.Keys.Authenticate(r.Context(), presentedKey(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dexbridge"`)
			h.fail(w, r, err)
			return
		}
		// A delegate key that names nobody, or someone it may not act for, could not
		// call any tool: say so at once.
		if err := p.ActFor(onBehalfOf(r)); err != nil {
			h.fail(w, r, err)
			return
		}
		// A tool call may wait as long as the REST request it becomes: a diagnosis
		// with refresh waits for the data collection, then for the worker.
		wait := h.opts.RefreshTimeout + h.opts.RequestTimeout + 30*time.Second
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			h.opts.Log.Debug("extending the write deadline failed", "err", err)
		}
		next.ServeHTTP(w, r)
	}
}
