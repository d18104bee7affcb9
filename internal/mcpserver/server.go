// Package mcpserver is dexbridge's MCP server (Model Context Protocol over Streamable
// HTTP): the tools an LLM agent needs for a conversation with an employee. A tool
// call becomes one request to the REST API's own handler, in process, carrying the
// caller's API key: validation, scopes, the delegate binding and rate limits are the
// REST API's own, not a copy of them, and a refusal is the same problem code.
package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// Options are the server's dependencies.
type Options struct {
	// REST is the REST API's handler, with its middleware: each tool call is one
	// request to it.
	REST http.Handler
	Log  *slog.Logger
}

// maxBody caps an MCP request's body, as the REST API caps its bodies.
const maxBody = 1 << 20

// maxWaitSeconds bounds the waits a tool may ask for: MCP clients give up on a call
// after about 60 s (the TypeScript SDK's default), so a long operation answers with
// its execution id within this bound and the agent follows it with get_execution.
const maxWaitSeconds = 25

const instructions = `dexbridge connects you to the employee's devices as Nexthink sees them.
A conversation: identify_devices (by the employee's UPN, user name or email) ->
list_topics to pick the topic of the complaint -> diagnose the topic on the device ->
remediate with a remediation the diagnosis suggested (ask the employee first; give the
reason in their words) -> get_execution until its status is final -> diagnose again to
confirm. Errors carry a stable code (docs/errors.md): delegate_forbidden means this key
acts for one employee only.`

// New returns the MCP endpoint's handler. It is stateless (no Mcp-Session-Id): any
// replica answers any request, as with the REST API, and answers are plain JSON.
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "dexbridge", Title: "dexbridge", Version: version()},
		&mcp.ServerOptions{Instructions: instructions, Logger: o.Log})
	for _, t := range tools() {
		t.add(s, o.REST)
	}
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Stateless:           true,
		JSONResponse:        true,
		MaxRequestBodyBytes: maxBody,
		Logger:              o.Log,
		// Every request needs an API key, which a DNS-rebinding page does not have,
		// and a reverse proxy on the same host sends its public Host header.
		DisableLocalhostProtection: true,
	})
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// adder is a tool of any input and output type.
type adder interface {
	add(*mcp.Server, http.Handler)
}

// tool is one MCP tool: its input type In (the arguments, from which the input
// schema is generated), the REST call it becomes, and the REST answer's type Out
// (the output schema and structured content), with a short text for the model.
type tool[In, Out any] struct {
	name, title, description string
	annotations              *mcp.ToolAnnotations
	// required lists arguments required by the tool beyond what its type requires.
	required []string
	call     func(In) (call, error)
	summary  func(Out, answer) string
}

// schema generates the JSON Schema of T.
func schema[T any]() *jsonschema.Schema {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("mcpserver: schema of %T: %v", *new(T), err)) // a programming error, caught by every test
	}
	return s
}

func (t tool[In, Out]) add(s *mcp.Server, rest http.Handler) {
	in := schema[In]()
	for _, r := range t.required {
		if !slices.Contains(in.Required, r) {
			in.Required = append(in.Required, r)
		}
	}
	s.AddTool(&mcp.Tool{Name: t.name, Title: t.title, Description: t.description, Annotations: t.annotations,
		InputSchema: in, OutputSchema: schema[Out]()}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return t.run(ctx, rest, req), nil
	})
}

// run answers a tool call; every failure is a tool result with isError, never a
// protocol error, so that the model reads the problem and can correct itself.
func (t tool[In, Out]) run(ctx context.Context, rest http.Handler, req *mcp.CallToolRequest) *mcp.CallToolResult {
	var args In
	if err := decodeArgs(req.Params.Arguments, &args); err != nil {
		return failed(problem.From(err).Doc())
	}
	for _, name := range t.required {
		if empty(req.Params.Arguments, name) {
			return failed(problem.InvalidField(name, "%s is required", name).Doc())
		}
	}
	c, err := t.call(args)
	if err != nil {
		return failed(problem.From(err).Doc())
	}
	var from http.Header
	if req.Extra != nil {
		from = req.Extra.Header
	}
	a, err := do(ctx, rest, from, c)
	if err != nil {
		return failed(problem.From(err).Doc())
	}
	if doc, ok := a.failure(); !ok {
		return failed(doc)
	}
	var out Out
	if err := json.Unmarshal(a.body, &out); err != nil {
		return failed(problem.New(problem.Internal, "an internal error occurred").Doc())
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: t.summary(out, a)}},
		StructuredContent: json.RawMessage(a.body),
	}
}

// empty reports whether the argument name is absent, null or "".
func empty(raw json.RawMessage, name string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return true
	}
	v, ok := m[name]
	return !ok || string(v) == "null" || string(v) == `""`
}

// failed is a tool error: the problem's code and detail for the model to read, and
// the whole problem document in _meta for programs.
func failed(doc problem.Document) *mcp.CallToolResult {
	text := fmt.Sprintf("%s: %s", doc.Code, doc.Detail)
	if doc.Field != "" {
		text += fmt.Sprintf(" (argument %s)", doc.Field)
	}
	if doc.RetryAfter > 0 {
		text += fmt.Sprintf(" (retry after %d s)", doc.RetryAfter)
	}
	return &mcp.CallToolResult{
		IsError: true,
		Content: []mcp.Content{&mcp.TextContent{Text: text}},
		Meta:    mcp.Meta{"dexbridge/problem": doc},
	}
}
