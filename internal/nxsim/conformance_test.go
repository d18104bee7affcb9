package nxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/dexbridge/dexbridge/internal/testenv"
)

// apiDoc is one of Nexthink's OpenAPI documents with a router over nxsim's URL.
type apiDoc struct {
	doc    *openapi3.T
	router routers.Router
}

// loadDoc loads testdata/openapi/<name> (byte-identical copies of Nexthink's published
// documents) and points its server at base.
//
// One in-memory patch: NqlApiExecuteResponse types each v1 data cell as an object,
// while Nexthink's own examples (and every client) have strings and numbers in the
// cells; the cell schema is relaxed to "any". Everything else is validated as
// published.
func loadDoc(t *testing.T, name, base string) apiDoc {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("testdata/openapi/" + name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	if s, ok := doc.Components.Schemas["NqlApiExecuteResponse"]; ok {
		s.Value.Properties["data"].Value.Items.Value.Items = openapi3.NewSchemaRef("", &openapi3.Schema{})
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router %s: %v", name, err)
	}
	return apiDoc{doc: doc, router: router}
}

// conformanceCase is one call whose answer must conform to the documents.
type conformanceCase struct {
	name    string
	doc     string // "nql" or "act"
	method  string
	path    string
	auth    string // "full", "nql", "ra", "bad" or "" (no header)
	body    any
	headers []string
	faults  *Faults
	setup   func(t *testing.T, in *Instance, tok string) string // returns a path override
	want    int
}

func TestConformance(t *testing.T) {
	in := startTest(t, func(c *Config) { c.ExportDelay = 1 })
	docs := map[string]apiDoc{
		"nql": loadDoc(t, "nql-api.json", in.URL()),
		"act": loadDoc(t, "remote-actions-api.json", in.URL()),
	}
	toks := map[string]string{
		"full": token(t, in.URL(), "eu-client", "eu-client-secret"),
		"nql":  token(t, in.URL(), "eu-nql", "eu-nql-secret"),
		"ra":   token(t, in.URL(), "eu-ra", "eu-ra-secret"),
		"bad":  "not-a-token",
	}
	healthyUID := deviceUID(t, in, "PC-HEALTHY")
	exec := func(v string) string { return "/api/" + v + "/nql/execute" }
	okBody := map[string]any{"queryId": "#diagnose_onedrive_issues", "parameters": map[string]string{"device_name": "PC-ONEDRIVE"}}
	basic := map[string]any{"queryId": "#get_device_basic_infos", "parameters": map[string]string{"username": "jdoe"}}
	down := &Faults{Down: "503"}
	err500 := &Faults{ErrorRate: 1, ErrorStatus: 500}
	limited := &Faults{RateLimitRate: 1, RetryAfterSeconds: 2}
	completed := func(rowLimit int) func(*testing.T, *Instance, string) string {
		return func(t *testing.T, in *Instance, tok string) string {
			call(t, http.MethodPut, in.URL()+"/_nxsim/exports/settings", "", ExportSettings{DelayMS: 1, RowLimit: rowLimit})
			id := startExport(t, in.URL(), tok, "#get_device_basic_infos", map[string]string{"username": "jdoe"})
			waitExport(t, in.URL(), tok, id)
			return "/api/v1/nql/status/" + id
		}
	}
	var cases []conformanceCase
	for _, v := range []string{"v1", "v2"} {
		cases = append(cases,
			conformanceCase{name: v + " execute json", doc: "nql", method: "POST", path: exec(v), auth: "full", body: basic, want: 200},
			conformanceCase{name: v + " execute csv", doc: "nql", method: "POST", path: exec(v), auth: "full", body: basic, headers: []string{"Accept", "text/csv"}, want: 200},
			conformanceCase{name: v + " execute utc", doc: "nql", method: "POST", path: exec(v), auth: "nql", body: okBody, headers: []string{"x-utc-times", "true"}, want: 200},
			conformanceCase{name: v + " execute no token", doc: "nql", method: "POST", path: exec(v), body: okBody, want: 401},
			conformanceCase{name: v + " execute bad token", doc: "nql", method: "POST", path: exec(v), auth: "bad", body: okBody, want: 401},
			conformanceCase{name: v + " execute without permission", doc: "nql", method: "POST", path: exec(v), auth: "ra", body: okBody, want: 403},
			conformanceCase{name: v + " execute unknown query", doc: "nql", method: "POST", path: exec(v), auth: "full", body: map[string]any{"queryId": "#no_such_query"}, want: 404},
			conformanceCase{name: v + " execute not acceptable", doc: "nql", method: "POST", path: exec(v), auth: "full", body: okBody, headers: []string{"Accept", "application/xml"}, want: 406},
			conformanceCase{name: v + " execute bad query id", doc: "nql", method: "POST", path: exec(v), auth: "full", body: map[string]any{"queryId": "no-hash"}, want: 400},
			conformanceCase{name: v + " execute missing parameter", doc: "nql", method: "POST", path: exec(v), auth: "full", body: map[string]any{"queryId": "#diagnose_onedrive_issues"}, want: 400},
			conformanceCase{name: v + " execute 500", doc: "nql", method: "POST", path: exec(v), auth: "full", body: okBody, faults: err500, want: 500},
			conformanceCase{name: v + " execute 503", doc: "nql", method: "POST", path: exec(v), auth: "full", body: okBody, faults: down, want: 503},
			conformanceCase{name: v + " execute 429", doc: "nql", method: "POST", path: exec(v), auth: "full", body: okBody, faults: limited, want: 429},
		)
	}
	cases = append(cases,
		conformanceCase{name: "export post", doc: "nql", method: "POST", path: "/api/v1/nql/export", auth: "full", body: map[string]any{"queryId": "#get_device_basic_infos", "parameters": map[string]string{"username": "jdoe"}, "compression": "GZIP"}, want: 200},
		conformanceCase{name: "export get", doc: "nql", method: "GET", path: "/api/v1/nql/export?queryId=%23get_device_basic_infos&username=jdoe", auth: "full", want: 200},
		conformanceCase{name: "export no token", doc: "nql", method: "POST", path: "/api/v1/nql/export", body: okBody, want: 401},
		conformanceCase{name: "export without permission", doc: "nql", method: "POST", path: "/api/v1/nql/export", auth: "ra", body: okBody, want: 403},
		conformanceCase{name: "export unknown query", doc: "nql", method: "POST", path: "/api/v1/nql/export", auth: "full", body: map[string]any{"queryId": "#nope_nope"}, want: 404},
		conformanceCase{name: "export get unknown query", doc: "nql", method: "GET", path: "/api/v1/nql/export?queryId=%23nope_nope", auth: "full", want: 404},
		conformanceCase{name: "export 500", doc: "nql", method: "POST", path: "/api/v1/nql/export", auth: "full", body: okBody, faults: err500, want: 500},
		conformanceCase{name: "export 503", doc: "nql", method: "POST", path: "/api/v1/nql/export", auth: "full", body: okBody, faults: down, want: 503},
		conformanceCase{name: "export bad compression", doc: "nql", method: "POST", path: "/api/v1/nql/export", auth: "full", body: map[string]any{"queryId": "#get_device_basic_infos", "compression": "LZ4"}, want: 400},
		conformanceCase{name: "status completed", doc: "nql", method: "GET", auth: "full", setup: completed(0), want: 200},
		conformanceCase{name: "status truncated", doc: "nql", method: "GET", auth: "full", setup: completed(1), want: 206},
		conformanceCase{name: "status unknown", doc: "nql", method: "GET", path: "/api/v1/nql/status/nope", auth: "full", want: 404},
		conformanceCase{name: "status no token", doc: "nql", method: "GET", path: "/api/v1/nql/status/nope", want: 401},
		conformanceCase{name: "status without permission", doc: "nql", method: "GET", path: "/api/v1/nql/status/nope", auth: "ra", want: 403},
		conformanceCase{name: "status 429", doc: "nql", method: "GET", path: "/api/v1/nql/status/nope", auth: "full", faults: limited, want: 429},
		conformanceCase{name: "status 500", doc: "nql", method: "GET", path: "/api/v1/nql/status/nope", auth: "full", faults: err500, want: 500},
		conformanceCase{name: "status 503", doc: "nql", method: "GET", path: "/api/v1/nql/status/nope", auth: "full", faults: down, want: 503},

		conformanceCase{name: "list actions", doc: "act", method: "GET", path: "/api/v1/act/remote-action", auth: "full", want: 200},
		conformanceCase{name: "list actions no token", doc: "act", method: "GET", path: "/api/v1/act/remote-action", want: 401},
		conformanceCase{name: "list actions without permission", doc: "act", method: "GET", path: "/api/v1/act/remote-action", auth: "nql", want: 403},
		conformanceCase{name: "details", doc: "act", method: "GET", path: "/api/v1/act/remote-action/details?nql-id=%23disable_application_from_startup_menu", auth: "ra", want: 200},
		conformanceCase{name: "details unknown", doc: "act", method: "GET", path: "/api/v1/act/remote-action/details?nql-id=%23nope", auth: "full", want: 404},
		conformanceCase{name: "details no token", doc: "act", method: "GET", path: "/api/v1/act/remote-action/details?nql-id=%23nope", want: 401},
		conformanceCase{name: "details without permission", doc: "act", method: "GET", path: "/api/v1/act/remote-action/details?nql-id=%23nope", auth: "nql", want: 403},
		conformanceCase{name: "execute action", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{healthyUID}, "expiresInMinutes": 120, "triggerInfo": map[string]string{"externalSource": "test", "reason": "conformance", "externalReference": "INC1"}}, want: 200},
		conformanceCase{name: "execute action no token", doc: "act", method: "POST", path: "/api/v1/act/execute", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{healthyUID}}, want: 401},
		conformanceCase{name: "execute action without permission", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "nql", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{healthyUID}}, want: 403},
		conformanceCase{name: "execute action not api enabled", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: map[string]any{"remoteActionId": "#restart_device", "devices": []string{healthyUID}}, want: 403},
		conformanceCase{name: "execute action unknown devices", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{"00000000-0000-4000-8000-000000000000"}}, want: 400},
		conformanceCase{name: "execute action 429", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{healthyUID}}, faults: limited, want: 429},
		conformanceCase{name: "execute action 500", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{healthyUID}}, faults: err500, want: 500},
		conformanceCase{name: "execute action 503", doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{healthyUID}}, faults: down, want: 503},
	)
	for _, bad := range badExecuteBodies(healthyUID) {
		cases = append(cases, conformanceCase{name: "execute action 400 " + bad.name, doc: "act", method: "POST", path: "/api/v1/act/execute", auth: "full", body: bad.body, want: 400})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.faults != nil {
				setFaults(t, in, *tc.faults)
				t.Cleanup(func() { setFaults(t, in, Faults{}) })
			}
			path := tc.path
			if tc.setup != nil {
				path = tc.setup(t, in, toks["full"])
			}
			var raw []byte
			if tc.body != nil {
				raw, _ = json.Marshal(tc.body)
			}
			headers := tc.headers
			if tc.body != nil {
				headers = append([]string{"Content-Type", "application/json"}, headers...)
			}
			status, hdr, body := call(t, tc.method, in.URL()+path, toks[tc.auth], tc.body, headers...)
			if status != tc.want {
				t.Fatalf("status: got %d, want %d; body %s", status, tc.want, body)
			}
			validate(t, docs[tc.doc], tc.method, in.URL()+path, raw, headers, toks[tc.auth], status, hdr, body)
		})
	}
}

// badExecuteBodies are execute requests the Remote Actions API refuses with 400.
func badExecuteBodies(uid string) []struct {
	name string
	body any
} {
	many := make([]string, 10001)
	for k := range many {
		many[k] = uid
	}
	return []struct {
		name string
		body any
	}{
		{"no remote action id", map[string]any{"devices": []string{uid}}},
		{"empty remote action id", map[string]any{"remoteActionId": "", "devices": []string{uid}}},
		{"no devices", map[string]any{"remoteActionId": "#set_outlook_online"}},
		{"empty devices", map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{}}},
		{"too many devices", map[string]any{"remoteActionId": "#set_outlook_online", "devices": many}},
		{"expires too soon", map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{uid}, "expiresInMinutes": 59}},
		{"expires too late", map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{uid}, "expiresInMinutes": 10081}},
		{"reason too long", map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{uid}, "triggerInfo": map[string]string{"reason": strings.Repeat("x", 501)}}},
		{"param not a string", map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{uid}, "params": map[string]any{"x": 1}}},
		{"unknown action", map[string]any{"remoteActionId": "#nope", "devices": []string{uid}}},
		{"missing input", map[string]any{"remoteActionId": "#disable_application_from_startup_menu", "devices": []string{uid}}},
		{"unknown input", map[string]any{"remoteActionId": "#set_outlook_online", "devices": []string{uid}, "params": map[string]string{"Foo": "bar"}}},
		{"not json", "{"},
	}
}

// validate checks a response against the document. The status must be documented
// for the operation, except 400, 429, 500 and 503, which Nexthink's documents leave
// out of some operations (the NQL API documents no 400, the Remote Actions API no 429,
// 500 or 503): then the body must still be that API's ErrorResponse.
func validate(t *testing.T, d apiDoc, method, u string, body []byte, headers []string, tok string, status int, hdr http.Header, respBody []byte) {
	t.Helper()
	req := httptest.NewRequest(method, u, bytes.NewReader(body))
	for k := 0; k+1 < len(headers); k += 2 {
		req.Header.Set(headers[k], headers[k+1])
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		t.Fatalf("find route %s %s: %v", method, u, err)
	}
	documented := route.Operation.Responses.Status(status) != nil
	if !documented {
		switch status {
		case http.StatusBadRequest, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d is not documented for %s %s", status, method, route.Path)
		}
		var v any
		if err := json.Unmarshal(respBody, &v); err != nil {
			t.Fatalf("undocumented %d: body is not JSON: %s", status, respBody)
		}
		if err := d.doc.Components.Schemas["ErrorResponse"].Value.VisitJSON(v); err != nil {
			t.Fatalf("undocumented %d: body is not an ErrorResponse: %v", status, err)
		}
		if status == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: hdr,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Fatalf("response does not conform: %v\nbody: %s", err, respBody)
	}
	if resp := route.Operation.Responses.Status(status).Value; len(resp.Content) > 0 && !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		if !json.Valid(respBody) {
			t.Fatalf("body is not JSON: %s", respBody)
		}
	}
}

func setFaults(t *testing.T, in *Instance, f Faults) {
	t.Helper()
	if status, _, b := call(t, http.MethodPut, in.URL()+"/_nxsim/faults", "", f); status != http.StatusOK {
		t.Fatalf("set faults: got %d: %s", status, b)
	}
}

// deviceUID returns a device's collector UID through the NQL API.
func deviceUID(t *testing.T, in *Instance, name string) string {
	t.Helper()
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	rows := execV2(t, in.URL(), tok, "#diagnose_onedrive_issues", map[string]string{"device_name": name})
	if len(rows) != 1 {
		t.Fatalf("device %s: got %d rows", name, len(rows))
	}
	return rows[0]["device.collector.uid"].(string)
}

func startExport(t *testing.T, base, tok, id string, params map[string]string, extra ...any) string {
	t.Helper()
	body := map[string]any{"queryId": id, "parameters": params}
	if len(extra) == 1 {
		body["compression"] = extra[0]
	}
	status, _, b := call(t, http.MethodPost, base+"/api/v1/nql/export", tok, body)
	var out struct {
		ExportID string `json:"exportId"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &out) != nil || out.ExportID == "" {
		t.Fatalf("export: got %d %s", status, b)
	}
	return out.ExportID
}

// waitExport polls the status until the export ends and returns the final status body
// and HTTP status; it records every status seen.
func waitExport(t *testing.T, base, tok, id string) (map[string]any, int, []string) {
	t.Helper()
	var last map[string]any
	var code int
	var seen []string
	testenv.Eventually(t, "export "+id, func() bool {
		status, _, b := call(t, http.MethodGet, base+"/api/v1/nql/status/"+id, tok, nil)
		last, code = nil, status
		if err := json.Unmarshal(b, &last); err != nil {
			t.Fatalf("status: %s", b)
		}
		s, _ := last["status"].(string)
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == exportCompleted || s == exportError
	})
	return last, code, seen
}
