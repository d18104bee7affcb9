package ingress

import (
	"net/http"

	"github.com/dexbridge/dexbridge/schemas"
)

// documents serves the OpenAPI document and its Swagger 2.0 export, built once.
type documents struct {
	v3, v2 []byte
	err    error
}

func newDocuments() *documents {
	d := &documents{}
	if d.v3, d.err = schemas.OpenAPIJSON(); d.err == nil {
		d.v2, d.err = schemas.SwaggerV2JSON()
	}
	return d
}

func (d *documents) serve(doc func(*documents) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d.err != nil {
			http.Error(w, "the API document is unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc(d))
	}
}
