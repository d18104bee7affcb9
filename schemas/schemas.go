// Package schemas embeds dexbridge's JSON Schemas: one per NATS message type
// (events/<type>.json) and one per configuration file format (config/*.json).
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed common/*.json events/*.json config/*.json openapi.yaml
var files embed.FS

// FS exposes the embedded schema files.
func FS() fs.FS { return files }

// baseURL anchors relative $refs between embedded files.
const baseURL = "https://dexbridge.dev/schemas/"

// Schema is a compiled schema.
type Schema struct {
	name   string
	schema *jsonschema.Schema
}

// Load compiles the embedded schema at path (e.g. "config/topic.json").
func Load(path string) (*Schema, error) {
	c := jsonschema.NewCompiler()
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		raw, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		return c.AddResource(baseURL+p, doc)
	})
	if err != nil {
		return nil, err
	}
	s, err := c.Compile(baseURL + path)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", path, err)
	}
	return &Schema{name: path, schema: s}, nil
}

// Violation is one reason a document does not match its schema.
type Violation struct {
	Path    string // JSON pointer into the document, "" for the root
	Message string
}

func (v Violation) String() string {
	if v.Path == "" {
		return v.Message
	}
	return v.Path + ": " + v.Message
}

// Violations is the error Validate returns.
type Violations []Violation

func (vs Violations) Error() string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

// Validate checks doc, a value as decoded by encoding/json (map[string]any, []any,
// string, float64, json.Number, bool, nil), and returns Violations on a mismatch.
func (s *Schema) Validate(doc any) error {
	err := s.schema.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var out Violations
	collect(ve, message.NewPrinter(language.English), &out)
	if len(out) == 0 {
		out = Violations{{Message: ve.Error()}}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// collect keeps the leaf errors, which name the precise place. (The library's basic
// output names a $ref's leaf "validation failed": the tree is read instead.)
func collect(e *jsonschema.ValidationError, p *message.Printer, out *Violations) {
	if len(e.Causes) == 0 {
		path := ""
		for _, t := range e.InstanceLocation {
			path += "/" + strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		}
		*out = append(*out, Violation{Path: path, Message: e.ErrorKind.LocalizedString(p)})
	}
	for _, c := range e.Causes {
		collect(c, p, out)
	}
}
