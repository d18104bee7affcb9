package schemas

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

// OpenAPIYAML is the source of the REST API document.
func OpenAPIYAML() []byte {
	raw, _ := files.ReadFile("openapi.yaml")
	return raw
}

// OpenAPI loads the REST API document (OpenAPI 3.1).
func OpenAPI() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPIYAML())
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return doc, nil
}

// OpenAPIJSON is the document as served at /openapi.json.
func OpenAPIJSON() ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(OpenAPIYAML(), &v); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return json.Marshal(v)
}
