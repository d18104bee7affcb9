package schemas

import (
	"regexp"
	"slices"
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
	v2 := swaggerV2(t)
	if v2["swagger"] != "2.0" {
		t.Errorf("swagger export: got version %v", v2["swagger"])
	}
	paths, _ := v2["paths"].(map[string]any)
	if _, ok := paths["/api/v1/topics"]; !ok || len(paths) != len(doc.Paths.Map()) {
		t.Errorf("swagger export has %d paths, the document %d", len(paths), len(doc.Paths.Map()))
	}
}

// operation is what a client generator or a connector names and shows of an operation.
type operation struct{ at, id, summary, description string }

// Power Platform shows the summary as an action's name: at most 80 characters, no slash,
// ending with a letter or digit. Generators name methods after the operationId.
var (
	operationID      = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	operationSummary = regexp.MustCompile(`^[^/]{0,79}[A-Za-z0-9]$`)
)

func TestEveryOperationIsNamedAndDescribed(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var v3 []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			v3 = append(v3, operation{method + " " + path, op.OperationID, op.Summary, op.Description})
		}
	}
	var v2 []operation
	for path, item := range swaggerV2(t)["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			op := op.(map[string]any)
			id, _ := op["operationId"].(string)
			summary, _ := op["summary"].(string)
			description, _ := op["description"].(string)
			v2 = append(v2, operation{method + " " + path, id, summary, description})
		}
	}
	ids := map[string][]string{}
	for name, ops := range map[string][]operation{"openapi.json": v3, "openapi-v2.json": v2} {
		seen := map[string]string{}
		for _, op := range ops {
			if !operationID.MatchString(op.id) {
				t.Errorf("%s %s: operationId %q is not camelCase", name, op.at, op.id)
			}
			if other, ok := seen[op.id]; ok {
				t.Errorf("%s %s: operationId %q is also %s's", name, op.at, op.id, other)
			}
			seen[op.id] = op.at
			if !operationSummary.MatchString(op.summary) {
				t.Errorf("%s %s: summary %q is not a Power Platform action name", name, op.at, op.summary)
			}
			if strings.TrimSpace(op.description) == "" {
				t.Errorf("%s %s: no description", name, op.at)
			}
			ids[name] = append(ids[name], op.id)
		}
		slices.Sort(ids[name])
	}
	if !slices.Equal(ids["openapi.json"], ids["openapi-v2.json"]) {
		t.Errorf("operationIds differ: openapi.json %v, openapi-v2.json %v", ids["openapi.json"], ids["openapi-v2.json"])
	}
	if len(ids["openapi.json"]) < 20 {
		t.Errorf("found %d operations, want the whole API", len(ids["openapi.json"]))
	}
}

// TestEveryOperationDocumentsNegotiation keeps the document true to the router's
// manners: every operation may answer 406, except the webhooks that accept any Accept,
// and every operation that takes a body may answer 415.
func TestEveryOperationDocumentsNegotiation(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if path != "/api/v1/webhooks/{source}" && op.Responses.Status(406) == nil {
				t.Errorf("%s %s: no 406", method, path)
			}
			if (method == "POST" || method == "PUT" || method == "PATCH") && op.Responses.Status(415) == nil {
				t.Errorf("%s %s: no 415", method, path)
			}
		}
	}
}
