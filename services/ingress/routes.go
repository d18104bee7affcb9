package ingress

import (
	"net/http"

	"github.com/dexbridge/dexbridge/internal/auth"

	"github.com/gorilla/mux"
)

// NewHandler is the REST API with the middlewares every request goes through.
func NewHandler(o Options) http.Handler {
	var handler http.Handler // the whole REST API, which the MCP tools call (mcp.go)
	r := newRouter(o, func() http.Handler { return handler })
	handler = chain(r, recoverPanics(o.Log), admit(o.Admission, o.Metrics), requestIDs, accessLog(o.Log, o.Metrics), securityHeaders, manners(r, newCORSPolicy(o.CORSOrigins)))
	return handler
}

// newRouter wires every route of the REST API in one place; api is the whole API
// with its middlewares, once built, for the MCP tools.
func newRouter(o Options, api func() http.Handler) *mux.Router {
	h := &handlers{opts: o}
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(h.notFound)
	r.MethodNotAllowedHandler = h.methodNotAllowedOn(r)

	r.Use(routeTemplate, h.negotiate)
	h.routeMCP(r, api)
	r.HandleFunc("/healthz", h.healthz).Methods(http.MethodGet)
	if o.Metrics != nil {
		r.Handle("/metrics", o.Metrics.Handler()).Methods(http.MethodGet)
	}
	r.HandleFunc("/readyz", h.readyz).Methods(http.MethodGet)
	docs := newDocuments()
	r.HandleFunc("/openapi.json", docs.serve(func(d *documents) []byte { return d.v3 })).Methods(http.MethodGet)
	r.HandleFunc("/openapi-v2.json", docs.serve(func(d *documents) []byte { return d.v2 })).Methods(http.MethodGet)

	// API keys: HTTP Basic with an instance's Nexthink credentials or the admin
	// credential (or an admin-scoped key), one request per 10 s per client.
	r.HandleFunc("/api/v1/api-keys", h.withBasicOrAdmin(h.createKey)).Methods(http.MethodPost)
	r.HandleFunc("/v1/api_key", h.withBasic(h.createLegacyKey)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/api-keys", h.withBasicOrAdmin(h.listKeys)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/api-keys/{id}", h.revokeKeyEither).Methods(http.MethodDelete)

	// Full paths, no subrouters: a gorilla subrouter answers a wrong method with 404.
	r.HandleFunc("/api/v1/topics", h.withKey(auth.Read, h.listTopics)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/topics/{topic}", h.withKey(auth.Read, h.getTopic)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/devices", h.withKey(auth.Read, h.identifyDevices)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/devices/{device}", h.withKey(auth.Read, h.getDevice)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/status", h.withKey(auth.Read, h.status)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/admin/discovery", h.withKey(auth.Admin, h.runDiscovery)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/topics/{topic}/diagnosis", h.withKey(auth.Diagnose, h.diagnose)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/nql/{query_id}", h.withKey(auth.Diagnose, h.undelegated(h.executeQuery))).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/nql/{query_id}/export", h.withKey(auth.Diagnose, h.undelegated(h.exportQuery))).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/admin/reload", h.withKey(auth.Admin, h.reloadTopics)).Methods(http.MethodPost)

	// Remediation: the allow-list, triggers (sync or async) and executions (actions.go).
	r.HandleFunc("/api/v1/remote-actions", h.withKey(auth.Read, h.listRemoteActions)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/remote-actions/executions", h.withKey(auth.Remediate, h.triggerExecution)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/remote-actions/executions", h.withKey(auth.Remediate, h.listExecutions)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/remote-actions/executions/{id}", h.withKey(auth.Remediate, h.getExecution)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/topics/{topic}/remediations/{id}", h.withKey(auth.Remediate, h.remediate)).Methods(http.MethodPost)

	// Webhooks authenticate with their source's own credential, not an API key; the
	// listing of what arrived is for operators. (No source may be named deliveries.)
	r.HandleFunc("/api/v1/webhooks/deliveries", h.withKey(auth.Admin, h.listWebhookDeliveries)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/webhooks/{source}", h.receiveWebhook).Methods(http.MethodPost, http.MethodPut, http.MethodPatch)
	r.HandleFunc("/api/v1/proactive/events", h.withKey(auth.Read, h.listProactiveEvents)).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/proactive/events/{id}/ack", h.withKey(auth.Read, h.undelegated(h.ackProactiveEvent))).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/proactive/stream", h.withKey(auth.Read, h.undelegated(h.streamProactiveEvents))).Methods(http.MethodGet)
	// Subscriptions: a key manages its own; an admin key every one (subscriptions.go).
	// A delegate key acts for one employee, and a subscription hears about everyone.
	r.HandleFunc("/api/v1/proactive/subscriptions", h.withKey(auth.Read, h.undelegated(h.createSubscription))).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/proactive/subscriptions", h.withKey(auth.Read, h.undelegated(h.listSubscriptions))).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/proactive/subscriptions/{id}", h.withKey(auth.Read, h.undelegated(h.getSubscription))).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/proactive/subscriptions/{id}", h.withKey(auth.Read, h.undelegated(h.deleteSubscription))).Methods(http.MethodDelete)
	r.HandleFunc("/api/v1/proactive/subscriptions/{id}/resume", h.withKey(auth.Read, h.undelegated(h.resumeSubscription))).Methods(http.MethodPost)

	addHeadRoutes(r) // last: HEAD beside every GET above (manners.go)
	return r
}
