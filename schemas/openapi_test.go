package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOpenAPIDocumentIsValidAndExports(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("want an OpenAPI 3.1 document, got %s", doc.OpenAPI)
	}
	raw, err := SwaggerV2JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v2 map[string]any
	if err := json.Unmarshal(raw, &v2); err != nil {
		t.Fatal(err)
	}
	if v2["swagger"] != "2.0" {
		t.Errorf("swagger export: got version %v", v2["swagger"])
	}
	paths, _ := v2["paths"].(map[string]any)
	if _, ok := paths["/api/v1/topics"]; !ok || len(paths) != len(doc.Paths.Map()) {
		t.Errorf("swagger export has %d paths, the document %d", len(paths), len(doc.Paths.Map()))
	}
	if !strings.Contains(string(raw), `"X-API-Key"`) {
		t.Error("swagger export lost the API key security scheme")
	}
}
