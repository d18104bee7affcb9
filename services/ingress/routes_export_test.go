package ingress

import (
	"github.com/gorilla/mux"
)

// Route is one route of the router, for tests that must cover every route.
type Route struct {
	Template string
	Methods  []string
}

// Routes lists the router's routes as NewHandler(o) builds them.
func Routes(o Options) []Route {
	var out []Route
	_ = newRouter(o).Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := r.GetPathTemplate()
		ms, merr := r.GetMethods()
		if err == nil && merr == nil {
			out = append(out, Route{tpl, ms})
		}
		return nil
	})
	return out
}

// Produces is what a route answers besides (problem) JSON; "*/*" is no negotiation.
func Produces(template string) []string { return produces[template] }
