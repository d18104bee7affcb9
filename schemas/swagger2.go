package schemas

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

// The media types the API speaks: JSON answers and RFC 9457 problems.
var (
	swaggerConsumes = []string{"application/json"}
	swaggerProduces = []string{"application/json", "application/problem+json"}
)

// SwaggerV2JSON is the document converted to Swagger 2.0, which Power Platform custom
// connectors import. openapi2conv does the conversion, but it copies OpenAPI 3.1 schema
// keywords verbatim and drops what it does not know, so downgrade first rewrites the 3.1
// constructs into forms Swagger 2.0 has, and connector then restores what the conversion
// drops (problem and event-stream response schemas, produces) and adds what Power Platform
// reads (x-ms-summary).
func SwaggerV2JSON() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	if err := downgrade(doc); err != nil {
		return nil, fmt.Errorf("swagger 2.0 export: %w", err)
	}
	v2, err := openapi2conv.FromV3(doc)
	if err != nil {
		return nil, fmt.Errorf("swagger 2.0 export: %w", err)
	}
	connector(v2, doc)
	return json.Marshal(v2)
}

// downgrade rewrites doc, in place, into what Swagger 2.0 can say: no info.summary, a license
// URL instead of its SPDX identifier, `nullable` instead of null in a type list or a oneOf, enum
// instead of const, and the schemas of query, path and header parameters inlined (Swagger 2.0
// gives them a type, never a $ref). A keyword with no Swagger 2.0 form is an error, so the
// export never silently loses a rule.
func downgrade(doc *openapi3.T) error {
	doc.Info.Summary = ""
	if l := doc.Info.License; l != nil && l.Identifier != "" {
		l.URL = "https://spdx.org/licenses/" + l.Identifier + ".html"
		l.Identifier = ""
	}
	d := downgrader{seen: map[*openapi3.Schema]bool{}}
	c := doc.Components
	for _, name := range slices.Sorted(maps.Keys(c.Schemas)) {
		if err := d.schema(c.Schemas[name], "#/components/schemas/"+name); err != nil {
			return err
		}
	}
	for name, p := range c.Parameters {
		if err := d.parameter(p, "#/components/parameters/"+name); err != nil {
			return err
		}
	}
	for name, h := range c.Headers {
		if err := d.schema(h.Value.Schema, "#/components/headers/"+name); err != nil {
			return err
		}
	}
	for name, b := range c.RequestBodies {
		if err := d.content(b.Value.Content, "#/components/requestBodies/"+name); err != nil {
			return err
		}
	}
	for name, r := range c.Responses {
		if err := d.response(r, "#/components/responses/"+name); err != nil {
			return err
		}
	}
	for path, item := range doc.Paths.Map() {
		for _, p := range item.Parameters {
			if err := d.parameter(p, path); err != nil {
				return err
			}
		}
		for method, op := range item.Operations() {
			at := method + " " + path
			for _, p := range op.Parameters {
				if err := d.parameter(p, at); err != nil {
					return err
				}
			}
			if b := op.RequestBody; b != nil && b.Value != nil {
				if err := d.content(b.Value.Content, at); err != nil {
					return err
				}
			}
			for code, r := range op.Responses.Map() {
				if err := d.response(r, at+" "+code); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// downgrader visits each schema once: $refs resolve to shared values.
type downgrader struct {
	seen map[*openapi3.Schema]bool
}

func (d downgrader) parameter(p *openapi3.ParameterRef, at string) error {
	if p == nil || p.Value == nil || p.Value.Schema == nil {
		return nil
	}
	if p.Value.In != openapi3.ParameterInCookie && p.Value.Schema.Ref != "" {
		p.Value.Schema = &openapi3.SchemaRef{Value: p.Value.Schema.Value}
	}
	return d.schema(p.Value.Schema, at+" parameter "+p.Value.Name)
}

func (d downgrader) response(r *openapi3.ResponseRef, at string) error {
	if r == nil || r.Value == nil {
		return nil
	}
	for name, h := range r.Value.Headers {
		if h.Value != nil {
			if err := d.schema(h.Value.Schema, at+" header "+name); err != nil {
				return err
			}
		}
	}
	return d.content(r.Value.Content, at)
}

func (d downgrader) content(content openapi3.Content, at string) error {
	for mt, m := range content {
		if err := d.schema(m.Schema, at+" "+mt); err != nil {
			return err
		}
	}
	return nil
}

func (d downgrader) schema(ref *openapi3.SchemaRef, at string) error {
	if ref == nil || ref.Value == nil || d.seen[ref.Value] {
		return nil
	}
	if ref.Ref != "" {
		at = ref.Ref
	}
	s := ref.Value
	d.seen[s] = true
	if kw := without2(s); kw != "" {
		return fmt.Errorf("%s: %s has no Swagger 2.0 form", at, kw)
	}
	if s.Type != nil && len(*s.Type) > 1 {
		types := slices.DeleteFunc(slices.Clone(*s.Type), func(t string) bool { return t == openapi3.TypeNull })
		if len(types) != 1 {
			return fmt.Errorf("%s: type %v has no Swagger 2.0 form", at, *s.Type)
		}
		s.Type, s.Nullable = &openapi3.Types{types[0]}, true
	}
	if s.Const != nil {
		s.Enum = []any{s.Const}
		if s.Type == nil {
			s.Type = &openapi3.Types{jsonType(s.Const)}
		}
		s.Const = nil
	}
	for _, alts := range []struct {
		kw   string
		list *openapi3.SchemaRefs
	}{{"oneOf", &s.OneOf}, {"anyOf", &s.AnyOf}} {
		if len(*alts.list) == 0 {
			continue
		}
		// Only "this or null" converts: an allOf of one with x-nullable.
		others := slices.DeleteFunc(slices.Clone(*alts.list), isNull)
		if len(others) != 1 || len(*alts.list) != 2 {
			return fmt.Errorf("%s: %s other than one schema or null has no Swagger 2.0 form", at, alts.kw)
		}
		s.AllOf, s.Nullable, *alts.list = append(s.AllOf, others[0]), true, nil
	}
	children := slices.Concat(s.AllOf, openapi3.SchemaRefs{s.Items, s.AdditionalProperties.Schema})
	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		children = append(children, s.Properties[name])
	}
	for _, child := range children {
		if err := d.schema(child, at); err != nil {
			return err
		}
	}
	return nil
}

// without2 names a JSON Schema keyword of s that Swagger 2.0 lacks and openapi2conv would drop.
func without2(s *openapi3.Schema) string {
	for _, kw := range []struct {
		name string
		set  bool
	}{
		{"not", s.Not != nil},
		{"if", s.If != nil || s.Then != nil || s.Else != nil},
		{"prefixItems", len(s.PrefixItems) > 0},
		{"contains", s.Contains != nil},
		{"patternProperties", len(s.PatternProperties) > 0},
		{"dependentSchemas", len(s.DependentSchemas) > 0},
		{"dependentRequired", len(s.DependentRequired) > 0},
		{"propertyNames", s.PropertyNames != nil},
		{"$defs", len(s.Defs) > 0},
		{"unevaluatedItems", s.UnevaluatedItems.Has != nil || s.UnevaluatedItems.Schema != nil},
		{"unevaluatedProperties", s.UnevaluatedProperties.Has != nil || s.UnevaluatedProperties.Schema != nil},
	} {
		if kw.set {
			return kw.name
		}
	}
	return ""
}

func isNull(s *openapi3.SchemaRef) bool {
	return s.Value != nil && s.Value.Type != nil && len(*s.Value.Type) == 1 && s.Value.Type.IncludesNull()
}

func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return openapi3.TypeBoolean
	case float64, int, int64:
		return openapi3.TypeNumber
	default:
		return openapi3.TypeString
	}
}

// connector completes the converted document v2 of doc for Power Platform: the response
// schemas openapi2conv keeps only for application/json, consumes and produces, and an
// x-ms-summary (the name Power Platform shows) on every parameter.
func connector(v2 *openapi2.T, doc *openapi3.T) {
	v2.Consumes, v2.Produces = swaggerConsumes, swaggerProduces
	for name, r := range doc.Components.Responses {
		responseSchema(v2.Responses[name], r, doc.Components)
	}
	for _, p := range v2.Parameters {
		summarize(p)
	}
	for path, item := range doc.Paths.Map() {
		item2 := v2.Paths[path]
		for _, p := range item2.Parameters {
			summarize(p)
		}
		for method, op := range item.Operations() {
			op2 := item2.GetOperation(method)
			for _, p := range op2.Parameters {
				summarize(p)
			}
			// What the operation answers, success first.
			var produces []string
			responses := op.Responses.Map()
			for _, code := range slices.Sorted(maps.Keys(responses)) {
				r := responses[code]
				responseSchema(op2.Responses.Value(code), r, doc.Components)
				for _, mt := range slices.Sorted(maps.Keys(r.Value.Content)) {
					if !slices.Contains(produces, mt) {
						produces = append(produces, mt)
					}
				}
			}
			if !slices.Equal(produces, v2.Produces) {
				op2.Produces = produces
			}
			if slices.Equal(op2.Consumes, v2.Consumes) {
				op2.Consumes = nil
			}
		}
	}
}

// responseSchema gives r2 the schema of the first media type of r when the conversion kept
// none (it keeps application/json's only).
func responseSchema(r2 *openapi2.Response, r *openapi3.ResponseRef, c *openapi3.Components) {
	if r2 == nil || r2.Ref != "" || r2.Schema != nil || r.Value == nil {
		return
	}
	for _, mt := range slices.Sorted(maps.Keys(r.Value.Content)) {
		if s := r.Value.Content[mt].Schema; s != nil {
			r2.Schema, _ = openapi2conv.FromV3SchemaRef(s, c)
			return
		}
	}
}

// summarize gives p an x-ms-summary in title case: device_name is "Device Name".
func summarize(p *openapi2.Parameter) {
	if p == nil || p.Ref != "" || p.Extensions["x-ms-summary"] != nil {
		return
	}
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions["x-ms-summary"] = titleCase(p.Name)
}

var acronyms = map[string]string{"id": "ID", "uid": "UID", "upn": "UPN", "sid": "SID", "url": "URL"}

func titleCase(name string) string {
	words := strings.FieldsFunc(strings.TrimPrefix(name, "X-"), func(r rune) bool { return r == '_' || r == '-' })
	for i, w := range words {
		if a, ok := acronyms[strings.ToLower(w)]; ok {
			words[i] = a
		} else {
			words[i] = strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
		}
	}
	return strings.Join(words, " ")
}
