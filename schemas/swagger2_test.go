package schemas

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-openapi/loads"
	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/validate"
)

func swaggerV2(t *testing.T) map[string]any {
	t.Helper()
	raw, err := SwaggerV2JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v2 map[string]any
	if err := json.Unmarshal(raw, &v2); err != nil {
		t.Fatal(err)
	}
	return v2
}

func TestSwaggerV2PassesGoOpenAPIValidation(t *testing.T) {
	t.Parallel() // one of the package's slow tests: they run side by side
	raw, err := SwaggerV2JSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := loads.Analyzed(raw, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	errs, warnings := validate.NewSpecValidator(doc.Schema(), strfmt.Default).Validate(doc)
	for _, w := range warnings.Errors {
		t.Logf("warning: %v", w)
	}
	for _, e := range errs.Errors {
		t.Errorf("error: %v", e)
	}
}

// The Swagger 2.0 meta-schema accepts some JSON Schema it does not define (a type list is
// draft 4), and validators ignore unknown keywords, so what Power Platform refuses is
// looked for here.
func TestSwaggerV2HasNothingSwagger2Lacks(t *testing.T) {
	v2 := swaggerV2(t)
	walk(v2, "#", func(at string, m map[string]any) {
		if ty, ok := m["type"].([]any); ok {
			t.Errorf("%s: type list %v", at, ty)
		}
		for _, kw := range []string{"oneOf", "anyOf", "const", "nullable", "not", "examples", "$defs", "prefixItems", "if"} {
			if _, ok := m[kw]; ok {
				t.Errorf("%s: %s", at, kw)
			}
		}
		if in, _ := m["in"].(string); in != "" && in != "body" && path.Base(path.Dir(at)) == "parameters" {
			if _, ok := m["schema"]; ok {
				t.Errorf("%s: a %s parameter with a schema", at, in)
			}
			if m["x-ms-summary"] == nil {
				t.Errorf("%s: a parameter without x-ms-summary", at)
			}
		}
	})
	info := v2["info"].(map[string]any)
	if _, ok := info["summary"]; ok {
		t.Error("info.summary is OpenAPI 3.1")
	}
	if l := info["license"].(map[string]any); l["identifier"] != nil || l["url"] == nil {
		t.Errorf("info.license: got %v, want a name and a url", l)
	}
	for _, key := range []string{"consumes", "produces"} {
		if got, _ := v2[key].([]any); len(got) == 0 || got[0] != "application/json" {
			t.Errorf("%s: got %v, want application/json first", key, v2[key])
		}
	}
	defs := v2["securityDefinitions"].(map[string]any)
	if got := defs["apiKey"]; !reflect.DeepEqual(got, map[string]any{
		"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key (the V6 SDK's header).",
	}) {
		t.Errorf("securityDefinitions.apiKey: got %v", got)
	}
	if got := defs["basic"].(map[string]any)["type"]; got != "basic" {
		t.Errorf("securityDefinitions.basic: got type %v", got)
	}
}

// walk calls fn on every object of v that is not a map of names (properties, definitions,
// paths...), whose keys are names rather than keywords.
func walk(v any, at string, fn func(at string, m map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		if !strings.HasSuffix(at, "/properties") && !strings.HasSuffix(at, "/definitions") {
			fn(at, v)
		}
		for k, child := range v {
			walk(child, at+"/"+k, fn)
		}
	case []any:
		for i, child := range v {
			walk(child, fmt.Sprintf("%s/%d", at, i), fn)
		}
	}
}

// What the conversion must keep of the document: nullability, problem schemas, the media
// types of the event stream, parameter types.
func TestSwaggerV2KeepsTheContract(t *testing.T) {
	v2 := swaggerV2(t)
	for _, tc := range []struct {
		pointer string
		want    string
	}{
		{"/definitions/NullableTime", `{"format":"date-time","type":"string","x-nullable":true}`},
		{"/definitions/ApiKey/properties/rate_limit_per_second", `{"type":"number","x-nullable":true}`},
		{"/definitions/InstanceStatus/properties/last_discovery", `{"allOf":[{"$ref":"#/definitions/DiscoveryRun"}],"x-nullable":true}`},
		{"/definitions/NewApiKey/properties/rate_limit_per_second", `{"exclusiveMinimum":true,"minimum":0,"type":"number"}`},
		{"/responses/Problem/schema", `{"$ref":"#/definitions/Problem"}`},
		{"/paths/~1api~1v1~1proactive~1stream/get/produces", `["text/event-stream","application/problem+json"]`},
		{"/paths/~1healthz/get/responses/200/schema/properties/status", `{"enum":["ok"],"type":"string"}`},
		{"/paths/~1api~1v1~1topics/get/parameters/1", `{"description":"Only the topics that apply to this platform.",` +
			`"enum":["Windows","macOS"],"in":"query","name":"platform","type":"string","x-ms-summary":"Platform"}`},
	} {
		got, err := json.Marshal(pointer(v2, tc.pointer))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s: got %s, want %s", tc.pointer, got, tc.want)
		}
	}
}

func pointer(v any, p string) any {
	for _, tok := range strings.Split(p, "/")[1:] {
		switch c := v.(type) {
		case map[string]any:
			v = c[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func TestDowngrade(t *testing.T) {
	for _, tc := range []struct {
		schema  string
		want    string // the Swagger 2.0 definition
		wantErr string
	}{
		{schema: `{type: [string, "null"], format: date-time}`, want: `{"format":"date-time","type":"string","x-nullable":true}`},
		{schema: `{type: ["null", integer]}`, want: `{"type":"integer","x-nullable":true}`},
		{schema: `{const: ok}`, want: `{"enum":["ok"],"type":"string"}`},
		{schema: `{oneOf: [{$ref: "#/components/schemas/T"}, {type: "null"}]}`, want: `{"allOf":[{"$ref":"#/definitions/T"}],"x-nullable":true}`},
		{schema: `{anyOf: [{type: "null"}, {type: integer}]}`, want: `{"allOf":[{"type":"integer"}],"x-nullable":true}`},
		{
			schema: `{type: object, properties: {a: {type: [array, "null"], items: {type: [string, "null"]}}}}`,
			want:   `{"properties":{"a":{"items":{"type":"string","x-nullable":true},"type":"array","x-nullable":true}},"type":"object"}`,
		},
		{schema: `{oneOf: [{type: integer}, {type: string}]}`, wantErr: "oneOf other than one schema or null"},
		{schema: `{anyOf: [{type: integer}, {type: string}, {type: "null"}]}`, wantErr: "anyOf other than one schema or null"},
		{schema: `{type: [string, integer]}`, wantErr: "type [string integer]"},
		{schema: `{type: object, properties: {a: {not: {type: string}}}}`, wantErr: "#/components/schemas/S: not"},
		{schema: `{type: object, patternProperties: {"^x": {type: string}}}`, wantErr: "patternProperties"},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			doc, err := openapi3.NewLoader().LoadFromData(fmt.Appendf(nil, `
openapi: 3.1.0
info: {title: t, version: "1"}
paths: {}
components:
  schemas:
    T: {type: integer}
    S: %s
`, tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			err = downgrade(doc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v2, err := openapi2conv.FromV3(doc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(v2.Definitions["S"])
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTitleCase(t *testing.T) {
	for name, want := range map[string]string{
		"device_name":           "Device Name",
		"collector_uid":         "Collector UID",
		"query_id":              "Query ID",
		"Idempotency-Key":       "Idempotency Key",
		"X-Dexbridge-Signature": "Dexbridge Signature",
		"Last-Event-ID":         "Last Event ID",
		"upn":                   "UPN",
	} {
		if got := titleCase(name); got != want {
			t.Errorf("titleCase(%q): got %q, want %q", name, got, want)
		}
	}
}
