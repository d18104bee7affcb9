package webhookmap

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Placeholders are the names a message template may use.
// {{findings}} are the titles of the problems the diagnosis found, {{fix}} those of
// the remediations offered.
var Placeholders = []string{"user", "user_upn", "device", "monitor", "topic", "context", "priority", "trigger_time", "findings", "fix"}

var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.]*)\s*\}\}`)

// Template is a message with {{name}} placeholders, checked when loaded.
type Template struct {
	src string
}

// ParseTemplate checks that every placeholder is known.
func ParseTemplate(src string) (Template, error) {
	var unknown []string
	for _, m := range placeholderRE.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(Placeholders, m[1]) && !slices.Contains(unknown, m[1]) {
			unknown = append(unknown, m[1])
		}
	}
	if len(unknown) > 0 {
		return Template{}, fmt.Errorf("unknown placeholder {{%s}} (known: %s)", strings.Join(unknown, "}}, {{"), strings.Join(Placeholders, ", "))
	}
	return Template{src: strings.TrimSpace(src)}, nil
}

// Empty reports whether the template has no text.
func (t Template) Empty() bool { return t.src == "" }

// Render replaces each placeholder with its value ("" when absent).
func (t Template) Render(vars map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(t.src, func(m string) string {
		return vars[placeholderRE.FindStringSubmatch(m)[1]]
	})
}
