package topic

import (
	"fmt"
	"strings"
)

// Problem is one reason a topic cannot be used: the file, the path of the offending
// key inside it ("rules[2].when", "queries[0].nql") and why.
type Problem struct {
	File   string `json:"file"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s: %s: %s", p.File, p.Path, p.Reason)
}

// Problems is the error Compile returns: every problem it found, in file order.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// ProblemLines splits the error of Files.Load into its problems, one per line, as a
// refused reload reports them.
func ProblemLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = []string{"the definitions could not be loaded"}
	}
	return out
}
