package ingress

import (
	"net/http"

	"github.com/gorilla/mux"
)

// NewHandler wires every route of the REST API in one place.
func NewHandler(o Options) http.Handler {
	h := &handlers{opts: o}
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(h.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(h.methodNotAllowed)

	r.HandleFunc("/healthz", h.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", h.readyz).Methods(http.MethodGet, http.MethodHead)

	// Full paths, no subrouters: a gorilla subrouter answers a wrong method with 404.
	r.HandleFunc("/api/v1/topics", h.listTopics).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/topics/{topic}", h.getTopic).Methods(http.MethodGet)

	return chain(r, recoverPanics(o.Log), requestIDs, accessLog(o.Log), securityHeaders)
}
